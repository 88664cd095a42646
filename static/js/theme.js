// Light or dark theme. Without a choice the page follows the system (prefers-color-scheme, through
// the CSS color-scheme); the toggle stores an explicit choice in localStorage. Loaded in <head>
// without defer so a stored dark theme applies before the first paint: no white flash in a
// reading room.
(() => {
  "use strict";
  const KEY = "medmax-theme";
  const root = document.documentElement;
  const system = window.matchMedia("(prefers-color-scheme: dark)");
  const stored = () => {
    try { return localStorage.getItem(KEY); } catch { return null; }  // storage may be disabled
  };
  const current = () => root.dataset.theme || (system.matches ? "dark" : "light");

  function apply(theme) {
    if (theme === "light" || theme === "dark") root.dataset.theme = theme;
    else delete root.dataset.theme;
    const toggle = document.getElementById("theme-toggle");
    if (toggle) toggle.setAttribute("aria-pressed", String(current() === "dark"));
  }
  apply(stored());

  document.addEventListener("DOMContentLoaded", () => {
    const toggle = document.getElementById("theme-toggle");
    if (!toggle) return;
    toggle.hidden = false;  // without this script the button could do nothing
    apply(stored());
    toggle.addEventListener("click", () => {
      const next = current() === "dark" ? "light" : "dark";
      try { localStorage.setItem(KEY, next); } catch { /* the choice lasts this page only */ }
      apply(next);
    });
  });
  system.addEventListener("change", () => apply(stored()));
})();
