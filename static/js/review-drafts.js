// Drafts of an edit on the review screen: what the server holds, what the editor holds, and the
// two questions a clinician is asked so that no edit is dropped without a word (keep the draft
// when leaving the editor; which text to approve while a draft differs from the model's).
//
// Autosave (htmx, 800 ms after typing stops) is backed twice: a beacon to the same draft endpoint
// when the page is hidden or unloaded, and a copy in sessionStorage, because a reload's request
// can reach the server before the unloading page's beacon does.
window.MedMaxDrafts = (() => {
  "use strict";
  const $ = (sel, root = document) => root.querySelector(sel);
  const norm = (s) => (s || "").replace(/\r\n?/g, "\n");
  const same = (a, b) => !!a && !!b &&
    norm(a.instruction) === norm(b.instruction) && norm(a.response) === norm(b.response);

  const form = () => document.getElementById("edit-form");
  const edited = (f) => ({ instruction: f.elements.instruction.value, response: f.elements.response.value });
  // The model's text as the page shows it (the marks of the scores are plain text to textContent).
  const model = () => ({
    instruction: ($("#model-instruction") || {}).textContent || "",
    response: ($("#model-response") || {}).textContent || "",
  });
  const differs = () => { const f = form(); return !!f && !same(edited(f), model()); };

  let saved = null;     // the text the server holds for this editor (its draft, or the model's)
  let inflight = null;  // the text of the autosave on its way

  const storeKey = (f) => `medmax-draft:${f.dataset.candidate}:${f.elements.version.value}`;
  function remember(f) {
    try { sessionStorage.setItem(storeKey(f), JSON.stringify(edited(f))); } catch { /* full or off */ }
  }
  function forget(f) {
    try { sessionStorage.removeItem(storeKey(f)); } catch { /* off */ }
  }
  function stored(f) {
    try { return JSON.parse(sessionStorage.getItem(storeKey(f)) || "null"); } catch { return null; }
  }

  // Save at once (not after the autosave delay) if the server does not hold this text yet.
  function saveNow() {
    const f = form();
    if (!f || same(edited(f), saved) || !window.htmx) return;
    htmx.ajax("POST", f.getAttribute("hx-post"), { source: f, target: "#draft-status", swap: "outerHTML" });
  }
  function beacon() {
    const f = form();
    if (!f || same(edited(f), saved) || !navigator.sendBeacon) return;
    // FormData carries csrfmiddlewaretoken, the version and both texts, as the autosave does.
    if (navigator.sendBeacon(f.getAttribute("hx-post"), new FormData(f))) saved = edited(f);
  }

  // A new pane: note what the server holds; put back text this tab typed but the server may
  // not have got. Returns true when it restored something (the caller opens the editor).
  function init() {
    const f = form();
    if (!f) return false;
    saved = edited(f);
    const copy = stored(f);
    if (!copy || same(copy, saved)) { forget(f); return false; }
    f.elements.instruction.value = copy.instruction;
    f.elements.response.value = copy.response;
    const note = $("#draft-restored");
    if (note) note.textContent = "Unsaved text restored from this browser.";
    saveNow();
    return true;
  }

  function ask(dialogId, onChoice) {
    const dialog = document.getElementById(dialogId);
    if (!dialog || !window.MedMaxDialog) return false;
    MedMaxDialog.open(dialog, { onClose: (reason) => onChoice(reason) });
    return true;
  }

  // Leaving the editor: `done(kept)` closes it; an edit that differs from the model's text is
  // first kept as a draft or discarded, or the clinician goes back to editing.
  function requestClose(done) {
    if (!differs()) { done(false); return; }
    ask("keep-draft", (choice) => {
      if (choice === "keep") {
        saveNow();
        done(true);
      } else if (choice === "discard") {
        const f = form(), text = model();
        f.elements.instruction.value = text.instruction;
        f.elements.response.value = text.response;
        forget(f);
        saveNow();  // the server's draft becomes the model's text: no draft
        done(false);
      }
    });
  }

  // Approving while a draft differs: true when the question was asked (the caller waits).
  function confirmApprove({ approveModel, approveDraft }) {
    if (!differs()) return false;
    return ask("approve-which", (choice) => {
      if (choice === "draft") approveDraft();
      else if (choice === "model") approveModel();
    });
  }

  document.addEventListener("click", (ev) => {
    const choice = ev.target.closest("[data-choice]");
    const dialog = choice && choice.closest("[role=dialog]");
    if (dialog) MedMaxDialog.close(dialog, choice.dataset.choice, { focus: choice.dataset.choice === "back" });
  });
  document.addEventListener("input", (ev) => {
    const f = form();
    if (f && f.contains(ev.target)) remember(f);
  });
  document.addEventListener("htmx:beforeRequest", (ev) => {
    const f = form();
    if (f && ev.detail.elt === f) inflight = edited(f);
  });
  document.addEventListener("htmx:afterRequest", (ev) => {
    const f = form();
    if (!f || ev.detail.elt !== f || !ev.detail.successful || !inflight) return;
    saved = inflight;
    if (same(edited(f), saved)) forget(f);
    inflight = null;
  });
  document.addEventListener("visibilitychange", () => { if (document.visibilityState === "hidden") beacon(); });
  window.addEventListener("pagehide", beacon);

  return { init, requestClose, confirmApprove, differs, saveNow };
})();
