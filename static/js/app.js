// Site-wide behaviour. htmx 2 leaves 4xx/5xx responses unswapped: show them in #flash instead.
document.addEventListener("htmx:responseError", (event) => {
  const xhr = event.detail.xhr;
  const flash = document.getElementById("flash");
  if (!flash) return;
  const box = document.createElement("div");
  box.className = "msg error";
  const text = xhr.status === 409 ? "This item changed since you loaded it." :
    xhr.status === 403 ? "You do not have the role for that action." :
    `The server answered ${xhr.status}.`;
  box.textContent = text;
  flash.replaceChildren(box);
});
document.addEventListener("htmx:sendError", () => {
  const flash = document.getElementById("flash");
  if (!flash) return;
  const box = document.createElement("div");
  box.className = "msg error";
  box.textContent = "Network problem: nothing was lost, try again.";
  flash.replaceChildren(box);
});
