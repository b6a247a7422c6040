// Gallery: delete one image with a few seconds to undo it, or all of them after a
// confirmation; both forms still work without JavaScript. Images whose job is unfinished
// follow it, and can be selected for the ZIP as soon as it is done.

import { errorMessage, send } from "../js/http.js";
import { watchJob } from "../js/jobs.js";
import { deleteWithUndo, forgetPending, takeJustDeleted } from "../js/undo.js";

const grid = document.getElementById("gallery");
const empty = document.getElementById("empty-state");
const status = document.getElementById("gallery-status");

function say(message) {
  status.textContent = message;
  status.hidden = false;
  status.focus();
}

function showEmpty() {
  grid?.remove();
  document.getElementById("delete-all-form")?.remove();
  empty.hidden = false;
}

function visibleCards() {
  return grid ? [...grid.children].filter((card) => !card.hidden) : [];
}

// Deleted as the previous page was left: the server may have answered after this page.
const gone = takeJustDeleted();
grid?.querySelectorAll(".gallery-card").forEach((card) => {
  if (gone.has(card.dataset.image)) card.remove();
});
if (grid && grid.children.length === 0) showEmpty();

// A card's status badge and picture as its job moves on; once done, its thumbnails, its
// checkbox for the ZIP and its download link, as a reload would show them.
function showState(card, state) {
  const badge = card.querySelector(".meta .badge");
  badge.className = `badge badge-${state.status}`;
  badge.textContent = state.status_label;
  const [original, cutout] = card.querySelectorAll(".gallery-thumbs .thumb");
  if (state.status !== "done") {
    cutout.querySelector(".thumb-placeholder").textContent = state.stage_label;
    return;
  }
  const name = card.querySelector(".job-name").textContent;
  for (const [thumb, src, alt] of [
    [original, state.urls.thumb_original, `Original: ${name}`],
    [cutout, state.urls.thumb_cutout, `Cut-out of ${name}`],
  ]) {
    const img = document.createElement("img");
    Object.assign(img, { src, alt });
    thumb.replaceChildren(img);
  }
  card.querySelector(".select-unavailable")?.remove();
  card.querySelector(".select-input").disabled = false;
  card.querySelector(".select-card").hidden = false; // batch.js counts it from here
  const link = card.querySelector(".card-download");
  link.href = state.urls.cutout;
  link.hidden = false;
}

grid?.querySelectorAll(".gallery-card[data-state]").forEach((card) => {
  watchJob(JSON.parse(card.dataset.state), (state) => {
    if (card.isConnected) showState(card, state);
  });
});

const deleteAll = document.getElementById("delete-all-form");
// Other pages of images: the last card of this one going does not leave the owner with none.
const otherPages = document.querySelector(".pager") !== null;
const cardsShown = visibleCards().length;

document.querySelectorAll(".delete-form").forEach((form) => {
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    const card = form.closest(".gallery-card");
    deleteWithUndo({
      form,
      id: card.dataset.image,
      name: form.dataset.name,
      // The last card going: "No images yet", and no "Delete all" of nothing shown beside it.
      hide: () => {
        card.hidden = true;
        if (visibleCards().length > 0 || otherPages) return;
        empty.hidden = false;
        if (deleteAll) deleteAll.hidden = true;
      },
      onRestore: ({ hadFocus }) => {
        card.hidden = false;
        empty.hidden = true;
        if (deleteAll) deleteAll.hidden = false;
        if (hadFocus) form.querySelector("button").focus();
      },
      onDeleted: ({ hadFocus }) => {
        const next = visibleCards().find((other) => other.compareDocumentPosition(card) & Node.DOCUMENT_POSITION_PRECEDING)
          || visibleCards().at(-1);
        card.remove();
        if (grid.children.length === 0 && otherPages) {
          window.location.reload(); // the next images of the list
          return;
        }
        if (grid.children.length === 0) showEmpty();
        if (!hadFocus) return;
        if (next) next.querySelector(".gallery-thumbs").focus();
        else empty.querySelector("a").focus();
      },
    });
  });
});

if (deleteAll) {
  deleteAll.addEventListener("submit", async (event) => {
    event.preventDefault();
    const count = Number(deleteAll.dataset.total) - (cardsShown - visibleCards().length);
    if (!window.confirm(`Delete all ${count} of your images and their results? This cannot be undone.`)) return;
    forgetPending(); // deleted with the rest
    const response = await send(deleteAll.action, { body: new FormData(deleteAll) });
    if (!response.ok) {
      say(await errorMessage(response));
      return;
    }
    const { deleted } = await response.json();
    showEmpty();
    const n = deleted.length;
    say(`Deleted ${n} ${n === 1 ? "image" : "images"} and their results. Nothing of yours is left on the server.`);
  });
}
