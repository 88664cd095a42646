// Review screen: keyboard actions, image zoom/pan/window presets, edit mode, draft clock,
// idempotency keys, showing 409 conflicts, and where focus goes after a decision. Dialogs are
// dialog.js's, drafts review-drafts.js's. No inline code: the page's CSP forbids it.
(() => {
  "use strict";

  // htmx settles "style" by copying it with setAttribute, which the strict CSP blocks; the
  // viewer sets its transform through the CSSOM instead, so leave style out of settling.
  if (window.htmx) htmx.config.attributesToSettle = ["class", "width", "height"];

  const $ = (sel, root = document) => root.querySelector(sel);
  const $$ = (sel, root = document) => Array.from(root.querySelectorAll(sel));

  // --- idempotency keys: one random id per rendered form, so a double submit is recorded once.
  function randomId() {
    if (window.crypto && crypto.randomUUID) return crypto.randomUUID();
    const bytes = new Uint8Array(16);
    crypto.getRandomValues(bytes);
    return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  }
  function fillKeys(root) {
    $$("input[name=idempotency_key]", root).forEach((input) => {
      if (!input.value) input.value = randomId();
    });
  }

  // --- image viewer: fit by default; wheel/+/- zoom, drag/arrows pan, 0 fit, z full resolution.
  const viewer = { scale: 1, fit: 1, x: 0, y: 0, img: null, box: null, mode: "fit", window: "own" };
  const WINDOWS = {
    // Contrast/brightness approximations of the usual CT windows on an already windowed PNG.
    lung: "contrast(1.6) brightness(1.35)",
    bone: "contrast(2.2) brightness(0.85)",
    soft: "contrast(1.3) brightness(1.0)",
    brain: "contrast(2.6) brightness(1.1)",
  };

  function applyView() {
    if (!viewer.img) return;
    viewer.img.style.transform =
      `translate(${viewer.x}px, ${viewer.y}px) scale(${viewer.scale})`;
    const label = $("#zoom-level");
    if (label) label.textContent = viewer.mode === "fit" ? "fit" : `${Math.round(viewer.scale * 100)}%`;
  }
  function fitView() {
    const { img, box } = viewer;
    if (!img || !box) return;
    const w = img.naturalWidth || img.width, h = img.naturalHeight || img.height;
    if (!w || !h) return;
    // Fit above the tool strip, which would otherwise cover the bottom of the image.
    const tools = $(".viewer-tools", box);
    const bw = box.clientWidth, bh = box.clientHeight - (tools ? tools.offsetHeight + 8 : 0);
    viewer.fit = Math.min(bw / w, bh / h);
    viewer.scale = viewer.fit;
    viewer.x = (bw - w * viewer.scale) / 2;
    viewer.y = (bh - h * viewer.scale) / 2;
    viewer.mode = "fit";
    applyView();
  }
  function zoomAt(factor, cx, cy) {
    const { box } = viewer;
    if (!viewer.img || !box) return;
    if (cx === undefined) { cx = box.clientWidth / 2; cy = box.clientHeight / 2; }
    const next = Math.min(Math.max(viewer.scale * factor, viewer.fit * 0.5), 16);
    const k = next / viewer.scale;
    viewer.x = cx - (cx - viewer.x) * k;
    viewer.y = cy - (cy - viewer.y) * k;
    viewer.scale = next;
    viewer.mode = "zoom";
    applyView();
  }
  function fullResolution() {
    zoomAt(1 / viewer.scale);
  }
  function pan(dx, dy) {
    viewer.x += dx; viewer.y += dy; viewer.mode = "zoom"; applyView();
  }
  // CT images carry real preset renderings (data-preset-<name> on #viewer): the image is swapped,
  // keeping zoom and pan (same size). Without them the preset is a contrast filter, said so.
  const WINDOW_LABELS = { lung: "lung", bone: "bone", soft: "soft tissue", brain: "brain" };
  function setWindow(name) {
    const { img, box } = viewer;
    if (!img || !box || !box.dataset.dicom) return;
    const note = $("#window-note");
    if (!img.dataset.ownSrc) img.dataset.ownSrc = img.getAttribute("src");
    if (note && note.dataset.own === undefined) note.dataset.own = note.textContent;
    // Pressing the shown preset again, or w, goes back to the file's own window.
    if (!WINDOWS[name] || name === viewer.window) name = "own";
    const key = "preset" + name.charAt(0).toUpperCase() + name.slice(1);
    const real = box.dataset[key];
    let text = note ? note.dataset.own : "";
    if (name === "own") {
      img.style.filter = "";
      if (img.getAttribute("src") !== img.dataset.ownSrc) img.src = img.dataset.ownSrc;
    } else if (real) {
      img.style.filter = "";
      img.src = real;
      text = `Showing ${box.dataset[key + "Label"]}, rendered from the scan's HU values.`;
    } else {
      img.style.filter = WINDOWS[name];
      text = `Showing ${WINDOW_LABELS[name]} (approximate: contrast/brightness on the file's window).`;
    }
    if (note) note.textContent = text;
    viewer.window = name;
    $$("[data-window]").forEach((b) => b.classList.toggle("active", b.dataset.window === name));
  }
  function initViewer() {
    viewer.box = $("#viewer");
    viewer.img = $("#viewer-img");
    viewer.window = "own";
    if (!viewer.img) return;
    if (viewer.img.complete) fitView(); else viewer.img.addEventListener("load", fitView, { once: true });
    viewer.box.addEventListener("wheel", (ev) => {
      ev.preventDefault();
      const r = viewer.box.getBoundingClientRect();
      zoomAt(ev.deltaY < 0 ? 1.15 : 1 / 1.15, ev.clientX - r.left, ev.clientY - r.top);
    }, { passive: false });
    let drag = null;
    viewer.box.addEventListener("pointerdown", (ev) => {
      if (ev.target.closest("button")) return;
      drag = { x: ev.clientX, y: ev.clientY };
      viewer.box.setPointerCapture(ev.pointerId);
      viewer.box.classList.add("dragging");
    });
    viewer.box.addEventListener("pointermove", (ev) => {
      if (!drag) return;
      pan(ev.clientX - drag.x, ev.clientY - drag.y);
      drag = { x: ev.clientX, y: ev.clientY };
    });
    const stop = () => { drag = null; viewer.box.classList.remove("dragging"); };
    viewer.box.addEventListener("pointerup", stop);
    viewer.box.addEventListener("pointercancel", stop);
    $$("[data-zoom]", viewer.box).forEach((b) => b.addEventListener("click", () => {
      ({ in: () => zoomAt(1.25), out: () => zoomAt(0.8), fit: fitView, full: fullResolution })[b.dataset.zoom]();
    }));
    $$("[data-window]", viewer.box).forEach((b) => b.addEventListener("click", () => setWindow(b.dataset.window)));
  }
  window.addEventListener("resize", () => { if (viewer.mode === "fit") fitView(); });

  // --- overlays and modes
  const show = (el, on) => el && el.classList.toggle("hidden", !on);
  const isOpen = (el) => el && !el.classList.contains("hidden");
  const dialogs = window.MedMaxDialog;
  function toggleDialog(sel) {
    const el = $(sel);
    if (dialogs.isOpen(el)) dialogs.close(el, "toggle");
    else if (!dialogs.top()) dialogs.open(el);
  }
  function closeConflict() {
    const conflict = $("#conflict");
    if (conflict) conflict.replaceChildren();
  }
  // A long response gets an editor as tall as its text (up to about half the screen, so the
  // diff below stays in reach), not 7 rows with a scrollbar inside a scrolling panel.
  function fitTextarea(area) {
    area.style.height = "auto";
    area.style.height = `${Math.min(area.scrollHeight + 4, window.innerHeight * 0.45)}px`;
  }
  function openEdit() {
    const form = $("#edit-form");
    if (!form) return;
    show(form, true);
    show($("#cand-view"), false);
    show($("#draft-note"), false);
    const area = $("#edit-response");
    $$("textarea", form).forEach(fitTextarea);
    area.focus();
    area.setSelectionRange(area.value.length, area.value.length);
  }
  // Leaving the editor asks first whether to keep an edit that differs from the model's text.
  function closeEdit() {
    const form = $("#edit-form");
    if (!form || !isOpen(form)) return;
    MedMaxDrafts.requestClose((kept) => {
      show(form, false);
      show($("#cand-view"), true);
      show($("#draft-note"), kept);
      const edit = $("#actions-form [data-key=e]");
      if (edit) edit.focus();
    });
  }
  function openReject() {
    const panel = $("#reject-panel");
    if (!panel || dialogs.top()) return;
    const error = $("#reject-error");
    if (error) error.textContent = "";
    dialogs.open(panel, { initial: "form" });
  }
  // The reject form names a missing reason in words before anything is sent.
  function submitReject() {
    const form = $("#reject-panel form");
    if (!form) return;
    if (!form.querySelector("input[name=reason]:checked")) {
      const error = $("#reject-error");
      if (error) error.textContent = "Choose a reason for the rejection: press its key (1–9 or 0) or click it.";
      return;
    }
    form.requestSubmit();
  }
  // htmx binds hx-post on swapped-in content a moment after the swap (settle); a button
  // clicked before that would submit natively. Keys pressed in that gap wait for htmx:load.
  let pending = null;
  const paneReady = () => {
    const pane = $("#review-pane");
    return !pane || pane.dataset.ready === "1";
  };
  const click = (sel) => {
    if (!paneReady()) { pending = sel; return; }
    const b = $(sel);
    if (b && !b.disabled) b.click();
  };
  // Approve while a draft differs from the model's text: ask which text is meant. Mouse and
  // key both arrive here as a click on the Approve button.
  let approveAsked = false;
  document.addEventListener("click", (ev) => {
    const approve = ev.target.closest("[data-key=a]");
    if (!approve || approveAsked) { approveAsked = false; return; }
    const asked = MedMaxDrafts.confirmApprove({
      approveModel: () => { approveAsked = true; approve.click(); },
      approveDraft: () => click("[data-key=save-edit]"),
    });
    if (asked) { ev.preventDefault(); ev.stopImmediatePropagation(); }
  }, true);
  document.addEventListener("htmx:load", (ev) => {
    const pane = $("#review-pane");
    if (!pane || !(ev.detail.elt === pane || ev.detail.elt.contains(pane))) return;
    pane.dataset.ready = "1";
    if (pending) { const sel = pending; pending = null; click(sel); }
  });

  // --- "draft saved N s ago"
  let savedAt = null;
  function readSaved() {
    const status = $("#draft-status");
    savedAt = status && status.dataset.saved ? Date.parse(status.dataset.saved) : null;
  }
  setInterval(() => {
    const status = $("#draft-status");
    if (!status || !savedAt) return;
    const s = Math.max(0, Math.round((Date.now() - savedAt) / 1000));
    status.textContent = `draft saved ${s} s ago`;
  }, 1000);

  // --- after a decision: focus the new candidate's first action and say what happened, so a
  // keyboard or screen-reader user knows the pane changed under them.
  const DONE = { approve: "Approved", edit: "Edit saved and approved", reject: "Rejected",
                 skip: "Skipped", flag: "Flagged for discussion" };
  let lastAction = "";
  document.addEventListener("htmx:configRequest", (ev) => {
    const target = ev.detail.target;
    if (!target || target.id !== "review-pane") return;
    lastAction = /\/undo\/$/.test(ev.detail.path) ? "Last decision undone" :
      /\/overturn\/$/.test(ev.detail.path) ? "Automatic rejection overturned" :
      DONE[ev.detail.parameters.action] || "";
  });
  function announceAndFocus() {
    const pane = $("#review-pane");
    if (!pane) return;
    const first = $(".action-bar button, .action-bar a.button, .empty-queue a", pane);
    if (first) first.focus();
    const live = $("#review-announce");
    if (!live) return;
    const left = $("[data-testid=left]", pane);
    const now = pane.dataset.candidate
      ? `Now candidate ${pane.dataset.candidate}${pane.dataset.task ? `, ${pane.dataset.task}` : ""}`
      : "Nothing left to review";
    const said = [lastAction, now, left ? `${left.textContent} left` : ""].filter(Boolean).join(". ");
    live.textContent = `${said}.`;
    lastAction = "";
  }

  // --- the next candidate's image, fetched while this one is reviewed: after a decision the
  // swapped-in pane finds it in the cache (the image URL is immutable, by content hash).
  let preloaded = null;
  function preloadNext() {
    const pane = $("#review-pane");
    const url = pane && pane.dataset.nextImage;
    if (!url || (preloaded && preloaded.dataset.url === url)) return;
    // Keep a reference: the decoded image stays in memory until the pane that shows it arrives.
    preloaded = new Image();
    preloaded.dataset.url = url;
    preloaded.decoding = "async";
    preloaded.src = url;
  }

  function init(root) {
    fillKeys(root);
    readSaved();
    if (root === document || root.id === "review-pane") {
      initViewer();
      preloadNext();
      const form = $("#edit-form");
      const restored = MedMaxDrafts.init();
      if (form && (form.dataset.draft || restored)) openEdit();
    }
  }
  document.addEventListener("DOMContentLoaded", () => init(document));
  let paneSwapped = false;
  document.addEventListener("htmx:afterSwap", (ev) => {
    const target = ev.detail.target;
    if (target.id === "draft-status" || ev.detail.elt.id === "draft-status") {
      // A draft equal to the model's text (a discarded one) is no draft: no clock for it.
      readSaved();
      const status = $("#draft-status");
      if (status && savedAt) status.textContent = "draft saved 0 s ago";
      return;
    }
    // A conflict message lands beside the pane; the pane itself is unchanged.
    if (target.id === "conflict") return;
    closeConflict();
    dialogs.closeAll();
    paneSwapped = true;
  });
  // The new pane is set up once settled: until then htmx keeps the old pane's classes on
  // elements of the same id (an open editor would still look open, a hidden one hidden).
  document.addEventListener("htmx:afterSettle", () => {
    if (!paneSwapped) return;
    paneSwapped = false;
    init(document.getElementById("review-pane") || document);
    const form = $("#edit-form");
    if (!form || !isOpen(form)) announceAndFocus();
  });

  // 409 (candidate changed) and 400 (bad input) carry a fragment meant for #conflict: swap it.
  document.addEventListener("htmx:beforeSwap", (ev) => {
    const status = ev.detail.xhr.status;
    if (status === 409 || status === 400) {
      ev.detail.shouldSwap = true;
      ev.detail.isError = false;
      ev.detail.target = document.getElementById("conflict");
      ev.detail.swapOverride = "innerHTML";
    }
  });

  // --- keyboard (dialog.js has handled Esc, Tab and the keys of an open dialog before this)
  document.addEventListener("keydown", (ev) => {
    if (ev.altKey || ev.metaKey) return;
    const inField = ev.target.matches("input:not([type=radio]), textarea, select");
    const reject = $("#reject-panel");
    if (ev.key === "Escape") {
      if (isOpen($("#edit-form")) && inField) { closeEdit(); ev.preventDefault(); return; }
      closeConflict();
      return;
    }
    if (ev.ctrlKey) {
      if (ev.key === "Enter" && isOpen($("#edit-form"))) {
        ev.preventDefault();
        click("[data-key=save-edit]");
      }
      return;
    }
    if (dialogs.isOpen(reject)) {
      const radio = $(`[data-reason-key="${ev.key}"]`, reject);
      if (radio && !inField) {
        ev.preventDefault();
        radio.checked = true;
        $("#reject-error").textContent = "";
        $("#reject-comment").focus();
      } else if (ev.key === "Enter" && (!inField || ev.target.id === "reject-comment")) {
        ev.preventDefault();
        submitReject();
      }
      return;
    }
    // Behind a modal dialog only the keys that toggle it (?, g) still work.
    if (dialogs.top() && !["?", "g"].includes(ev.key)) return;
    if (inField) return;
    const key = ev.key;
    const actions = {
      a: () => click("[data-key=a]"),
      s: () => click("[data-key=s]"),
      f: () => click("[data-key=f]"),
      u: () => click("[data-key=u]"),
      o: () => click("[data-key=o]"),
      e: openEdit,
      r: openReject,
      g: () => toggleDialog("#guidelines-overlay"),
      "?": () => toggleDialog("#keys-overlay"),
      "+": () => zoomAt(1.25),
      "=": () => zoomAt(1.25),
      "-": () => zoomAt(0.8),
      0: fitView,
      z: fullResolution,
      1: () => setWindow("lung"),
      2: () => setWindow("bone"),
      3: () => setWindow("soft"),
      4: () => setWindow("brain"),
      w: () => setWindow("own"),
      ArrowLeft: () => pan(60, 0),
      ArrowRight: () => pan(-60, 0),
      ArrowUp: () => pan(0, 60),
      ArrowDown: () => pan(0, -60),
    };
    const act = actions[key];
    if (act) {
      ev.preventDefault();
      act();
    }
  });
  document.addEventListener("input", (ev) => {
    if (ev.target.matches("#edit-form textarea")) fitTextarea(ev.target);
  });
  document.addEventListener("click", (ev) => {
    const t = ev.target.closest("[data-key]");
    if (!t) return;
    if (t.dataset.key === "e") openEdit();
    else if (t.dataset.key === "r") openReject();
    else if (t.dataset.key === "close-edit") closeEdit();
  });
  // The reject form's own submit (its button, Enter in the comment) goes through the same check.
  document.addEventListener("submit", (ev) => {
    if (!ev.target.closest("#reject-panel") || ev.target.querySelector("input[name=reason]:checked")) return;
    ev.preventDefault();
    ev.stopImmediatePropagation();
    submitReject();
  }, true);
})();
