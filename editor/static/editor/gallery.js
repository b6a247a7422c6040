// Gallery: delete one image without leaving the page, or all of them after a confirmation
// (both forms still work without JavaScript).

import { errorMessage, send } from "../js/http.js";

const grid = document.getElementById("gallery");
const empty = document.getElementById("empty-state");

document.querySelectorAll(".delete-form").forEach((form) => {
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    const name = form.dataset.name;
    if (!window.confirm(`Delete ${name} and its results? This cannot be undone.`)) return;
    const response = await send(form.action, { body: new FormData(form) });
    if (!response.ok) {
      window.alert(await errorMessage(response));
      return;
    }
    const card = form.closest(".gallery-card");
    const next = card.nextElementSibling || card.previousElementSibling;
    card.remove();
    if (grid && grid.children.length === 0) {
      grid.remove();
      document.getElementById("delete-all-form")?.remove();
      empty.hidden = false;
      empty.querySelector("a").focus();
    } else if (next) {
      next.querySelector("a").focus();
    }
  });
});

const deleteAll = document.getElementById("delete-all-form");
if (deleteAll) {
  deleteAll.addEventListener("submit", (event) => {
    const count = grid ? grid.children.length : 0;
    if (!window.confirm(`Delete all ${count} of your images and their results? This cannot be undone.`)) {
      event.preventDefault();
    }
  });
}
