// Statistics charts are SVG drawn by the server; this only lets a legend button single out one
// series (click or Enter), since the strict CSP allows no inline handlers.
document.addEventListener("click", (event) => {
  const button = event.target.closest(".legend-item");
  if (!button) return;
  const chart = button.closest(".chart");
  const series = button.dataset.series;
  const already = button.getAttribute("aria-pressed") === "true";
  chart.querySelectorAll(".legend-item").forEach((b) => b.setAttribute("aria-pressed", "false"));
  chart.querySelectorAll(".seg").forEach((seg) => {
    seg.classList.toggle("active", !already && seg.dataset.series === series);
  });
  chart.classList.toggle("focused", !already);
  if (!already) button.setAttribute("aria-pressed", "true");
});
