// Upload form: a large ZIP takes a while to send; say so and stop a second submit.
document.addEventListener("submit", (event) => {
  const form = event.target.closest("[data-import-form]");
  if (!form) return;
  const button = form.querySelector("[data-import-submit]");
  if (button.disabled) {
    event.preventDefault();
    return;
  }
  button.disabled = true;
  form.querySelector("[data-import-sending]")?.classList.remove("hidden");
});
