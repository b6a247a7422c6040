// Upload page: drag and drop, file picker and clipboard paste; one card per file.

import { errorMessage, send } from "../js/http.js";
import { showError, updateCard } from "../js/jobcard.js";
import { watchJob } from "../js/jobs.js";

const dropzone = document.getElementById("dropzone");
const input = document.getElementById("file-input");
const list = document.getElementById("job-list");
const heading = document.getElementById("uploads-heading");
const template = document.getElementById("job-card-template");
const uploadUrl = list.dataset.uploadUrl;
const maxBytes = Number(list.dataset.maxBytes);

function newCard(file) {
  const card = template.content.firstElementChild.cloneNode(true);
  card.querySelector(".job-name").textContent = file.name || "Pasted image";
  card.querySelector(".thumb-original").alt = `Original: ${file.name || "pasted image"}`;
  card.querySelector(".thumb-cutout").alt = `Cut-out of ${file.name || "pasted image"}`;
  card.querySelector(".job-progress").setAttribute("aria-label", `Progress of ${file.name}`);
  heading.hidden = false;
  list.prepend(card);
  return card;
}

// Sends one file into its card; resolves to whether the server accepted it.
async function uploadFile(file, card = newCard(file)) {
  // The server refuses it too, but only once the browser starts sending: say so at once.
  if (file.size > maxBytes) {
    showError(card, `${file.name} is too large: the limit is ${list.dataset.maxBytesLabel}.`);
    return false;
  }
  const body = new FormData();
  body.append("file", file, file.name || "pasted-image.png");
  let response;
  try {
    response = await send(uploadUrl, { body });
  } catch {
    showError(card, `${file.name}: the upload did not reach the server. Check your connection and try again.`);
    return false;
  }
  if (!response.ok) {
    showError(card, await errorMessage(response));
    return false;
  }
  const state = await response.json();
  if (state.notes.length) {
    const notes = card.querySelector(".job-notes");
    notes.textContent = state.notes.join(" ");
    notes.hidden = false;
  }
  watchJob(state, (next) => updateCard(card, next));
  return true;
}

// Settles when the batch before has stopped sending one file at a time.
let turn = Promise.resolve();

async function uploadAll(files) {
  const queue = [...files].map((file) => [file, newCard(file)]);
  // A browser's first accepted upload gives it its owner (and session cookie). Until it has
  // one, files go one at a time, across batches too: sent at once, each would get an owner
  // of its own, and the browser would keep only the last.
  const previous = turn;
  let done;
  turn = new Promise((resolve) => {
    done = resolve;
  });
  try {
    await previous;
    while (queue.length > 0 && list.dataset.hasOwner !== "true") {
      if (await uploadFile(...queue.shift())) list.dataset.hasOwner = "true";
    }
  } finally {
    done();
  }
  queue.forEach(([file, card]) => uploadFile(file, card));
}

dropzone.addEventListener("click", () => input.click());
input.addEventListener("change", () => {
  uploadAll(input.files);
  input.value = "";
});

["dragenter", "dragover"].forEach((type) =>
  dropzone.addEventListener(type, (event) => {
    event.preventDefault();
    dropzone.classList.add("is-dragover");
  }),
);
["dragleave", "dragend"].forEach((type) =>
  dropzone.addEventListener(type, () => dropzone.classList.remove("is-dragover")),
);
dropzone.addEventListener("drop", (event) => {
  event.preventDefault();
  dropzone.classList.remove("is-dragover");
  uploadAll(event.dataTransfer.files);
});
// A file dropped beside the zone must not make the browser navigate away to it.
window.addEventListener("dragover", (event) => event.preventDefault());
window.addEventListener("drop", (event) => event.preventDefault());

document.addEventListener("paste", (event) => {
  const files = [...(event.clipboardData?.items || [])]
    .filter((item) => item.kind === "file")
    .map((item) => item.getAsFile())
    .filter(Boolean);
  if (files.length) {
    event.preventDefault();
    uploadAll(files);
  }
});

// Cards rendered by the server (recent uploads) pick their jobs back up after a reload.
list.querySelectorAll(".job-card[data-state]").forEach((card) => {
  watchJob(JSON.parse(card.dataset.state), (next) => updateCard(card, next));
});

// Lets tests (and anyone scripting the page) know the handlers are attached.
dropzone.dataset.ready = "true";
