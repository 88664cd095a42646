// Modal dialogs (role=dialog, aria-modal=true, hidden with the "hidden" class): opening one moves
// focus into it and keeps Tab inside it; Esc closes the topmost and focus returns to where it
// was. A button with data-dialog-key="k" is pressed by the key k while its dialog is on top, and
// one with data-dialog-close closes it. Used by the review screen's overlays and prompts.
window.MedMaxDialog = (() => {
  "use strict";
  const FOCUSABLE = "button:not([disabled]), [href], input:not([disabled]):not([type=hidden]), " +
    "select:not([disabled]), textarea:not([disabled]), [tabindex]:not([tabindex='-1'])";
  const stack = [];  // {el, returnTo, onClose}, the open dialogs, topmost last

  const visible = (el) => el.getClientRects().length > 0;
  const focusables = (el) => Array.from(el.querySelectorAll(FOCUSABLE)).filter(visible);
  const top = () => (stack.length ? stack[stack.length - 1].el : null);
  const isOpen = (el) => stack.some((entry) => entry.el === el);
  const firstFocus = (el) => focusables(el)[0] || el.querySelector("[tabindex='-1']") || el;

  // initial: a selector inside the dialog to focus first; else its first control, else the box.
  function open(el, { initial = null, onClose = null } = {}) {
    if (!el || isOpen(el)) return;
    stack.push({ el, returnTo: document.activeElement, onClose });
    el.classList.remove("hidden");
    ((initial && el.querySelector(initial)) || firstFocus(el)).focus();
  }

  // reason ("escape", "button", or the caller's word) goes to onClose. `focus: false` leaves
  // focus to the caller, when what follows (a decision, a swap) decides where it goes.
  function close(el, reason = "", { focus = true } = {}) {
    const i = stack.findIndex((entry) => entry.el === el);
    if (el) el.classList.add("hidden");
    if (i < 0) return;
    const [entry] = stack.splice(i, 1);
    const back = entry.returnTo;
    if (focus && back && back.isConnected && visible(back)) back.focus();
    if (entry.onClose) entry.onClose(reason);
  }
  function closeAll() {
    while (stack.length) close(top(), "closed");
  }

  document.addEventListener("keydown", (ev) => {
    const dialog = top();
    if (!dialog) return;
    if (ev.key === "Escape") {
      ev.preventDefault();
      ev.stopImmediatePropagation();
      close(dialog, "escape");
      return;
    }
    if (ev.key === "Tab") {
      const items = focusables(dialog);
      if (!items.length) { ev.preventDefault(); return; }
      const first = items[0], last = items[items.length - 1];
      const inside = dialog.contains(document.activeElement);
      if (ev.shiftKey && (document.activeElement === first || !inside)) {
        ev.preventDefault(); last.focus();
      } else if (!ev.shiftKey && (document.activeElement === last || !inside)) {
        ev.preventDefault(); first.focus();
      }
      return;
    }
    if (ev.ctrlKey || ev.altKey || ev.metaKey || ev.target.matches("input:not([type=radio]), textarea")) return;
    const button = dialog.querySelector(`[data-dialog-key="${CSS.escape(ev.key.toLowerCase())}"]`);
    if (button) {
      ev.preventDefault();
      ev.stopImmediatePropagation();
      button.click();
    }
  }, true);

  // Focus that lands behind a modal dialog (a click on the page) is brought back into it.
  document.addEventListener("focusin", (ev) => {
    const dialog = top();
    if (dialog && !dialog.contains(ev.target)) firstFocus(dialog).focus();
  });
  document.addEventListener("click", (ev) => {
    const closer = ev.target.closest("[data-dialog-close]");
    const dialog = closer && closer.closest("[role=dialog]");
    if (dialog) close(dialog, "button");
  });

  return { open, close, closeAll, isOpen, top };
})();
