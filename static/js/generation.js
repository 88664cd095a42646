// Launch form: show the server fieldset only when the OpenAI-compatible backend is chosen.
document.addEventListener("DOMContentLoaded", () => {
  const backend = document.querySelector(".job-form select[name=backend]");
  if (!backend) return;
  const sync = () => {
    document.querySelectorAll("[data-backend-only]").forEach((box) => {
      box.classList.toggle("hidden", box.dataset.backendOnly !== backend.value);
    });
  };
  backend.addEventListener("change", sync);
  sync();
});
