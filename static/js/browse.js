// Candidate browser. The filter form asks htmx for the results only; empty fields are dropped
// so the pushed address stays short, and a page cursor never survives a change of filters
// (a position in one ordering means nothing in another).
document.addEventListener("htmx:configRequest", (event) => {
  if (!event.detail.elt || event.detail.elt.id !== "browse-filters") return;
  const params = event.detail.parameters;
  for (const [name, value] of Object.entries(params)) {
    if (value === "" || name === "cursor") delete params[name];
  }
});
