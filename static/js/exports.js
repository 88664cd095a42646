// Export form: say at once whether the split proportions add up to 1.
document.addEventListener("DOMContentLoaded", () => {
  const input = document.querySelector("[data-export-split]");
  const note = document.querySelector("[data-export-split-sum]");
  if (!input || !note) return;
  const update = () => {
    const raw = input.value.trim();
    if (!raw) { note.textContent = "no split: one data file"; note.classList.remove("bad"); return; }
    const parts = raw.split(",").map(Number);
    const sum = parts.reduce((a, b) => a + b, 0);
    const ok = parts.length === 3 && parts.every((p) => p >= 0) && Math.abs(sum - 1) < 1e-6;
    note.textContent = ok ? "train / validation / test" : `needs three numbers adding up to 1 (now ${parts.length}, sum ${sum.toFixed(3)})`;
    note.classList.toggle("bad", !ok);
  };
  input.addEventListener("input", update);
  update();
});
