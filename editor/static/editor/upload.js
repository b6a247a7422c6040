// Upload page: drag and drop (anywhere on the page), file picker and clipboard paste; one
// card per file, brought into view as the files are chosen.

import { announce } from "../js/announce.js";
import { errorMessage, send } from "../js/http.js";
import { resetCard, showError, updateCard } from "../js/jobcard.js";
import { watchJob } from "../js/jobs.js";
import { settingsEntries, setupSettings } from "./batch_settings.js";

const dropzone = document.getElementById("dropzone");
const input = document.getElementById("file-input");
const list = document.getElementById("job-list");
const heading = document.getElementById("uploads-heading");
const template = document.getElementById("job-card-template");
const uploadUrl = list.dataset.uploadUrl;
const maxBytes = Number(list.dataset.maxBytes);

const overlay = document.getElementById("drop-overlay");
// Optional download settings sent with each file while "Keep these settings" is ticked.
const settingsFields = document.getElementById("upload-settings-fields");
const rememberSettings = document.getElementById("upload-remember");
setupSettings(settingsFields);
// Answers that refuse the file itself (unreadable, unsupported, too large): sending it again
// cannot help, so its card offers Dismiss alone. Others (429, 503, …) pass with time.
const REFUSED_FOR_GOOD = new Set([400, 413, 415, 422]);
const reduceMotion = window.matchMedia("(prefers-reduced-motion: reduce)");

function newCard(file) {
  const card = template.content.firstElementChild.cloneNode(true);
  const name = file.name || "pasted image";
  card.querySelector(".job-name").textContent = file.name || "Pasted image";
  card.querySelector(".thumb-original").alt = `Original: ${name}`;
  card.querySelector(".thumb-cutout").alt = `Cut-out of ${name}`;
  card.querySelector(".job-progress").setAttribute("aria-label", `Progress of ${name}`);
  card.querySelectorAll(".job-for").forEach((span) => span.append(name));
  card.querySelector(".job-retry").addEventListener("click", () => {
    const hadFocus = card.contains(document.activeElement);
    resetCard(card); // hides Retry: the keyboard's focus waits on the card's status instead
    if (hadFocus) {
      const status = card.querySelector(".job-status");
      status.tabIndex = -1;
      status.focus();
    }
    uploadAll([file], [card]);
  });
  card.querySelector(".job-dismiss").addEventListener("click", () => {
    const next = card.nextElementSibling || card.previousElementSibling;
    card.remove();
    if (list.children.length === 0) heading.hidden = true;
    (next?.querySelector("a:not([hidden]), button:not([hidden])") || dropzone).focus();
  });
  heading.hidden = false;
  list.prepend(card);
  return card;
}

// The new cards start below the fold on a phone: bring the list into view.
function revealCards() {
  const top = heading.getBoundingClientRect().top;
  const firstCard = list.firstElementChild?.getBoundingClientRect();
  if (top >= 0 && firstCard && firstCard.bottom <= window.innerHeight) return;
  heading.scrollIntoView({ block: "start", behavior: reduceMotion.matches ? "auto" : "smooth" });
}

// Sends one file into its card; resolves to whether the server accepted it.
async function uploadFile(file, card = newCard(file)) {
  // The server refuses it too, but only once the browser starts sending: say so at once.
  if (file.size > maxBytes) {
    showError(card, `${file.name} is too large: the limit is ${list.dataset.maxBytesLabel}.`, { retry: false });
    return false;
  }
  const body = new FormData();
  body.append("file", file, file.name || "pasted-image.png");
  if (rememberSettings.checked) settingsEntries(settingsFields).forEach(([name, value]) => body.append(name, value));
  let response;
  try {
    response = await send(uploadUrl, { body });
  } catch {
    showError(card, `${file.name}: the upload did not reach the server. Check your connection and try again.`);
    return false;
  }
  if (!response.ok) {
    showError(card, await errorMessage(response), { retry: !REFUSED_FOR_GOOD.has(response.status) });
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

async function uploadAll(files, cards = null) {
  if (files.length === 0) return;
  const queue = [...files].map((file, i) => [file, cards ? cards[i] : newCard(file)]);
  if (!cards) {
    revealCards();
    announce(files.length === 1 ? `Uploading ${files[0].name || "the pasted image"}…` : `Uploading ${files.length} images…`);
  }
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

// Files dropped anywhere on the page are taken; while they are dragged over it the whole page
// says so. (Without this, a file dropped beside the zone would make the browser open it.)
const carriesFiles = (event) => [...(event.dataTransfer?.types || [])].includes("Files");
let dragDepth = 0;
const endDrag = () => {
  dragDepth = 0;
  overlay.hidden = true;
  dropzone.classList.remove("is-dragover");
};
window.addEventListener("dragenter", (event) => {
  if (!carriesFiles(event)) return;
  event.preventDefault();
  dragDepth += 1;
  overlay.hidden = false;
  dropzone.classList.add("is-dragover");
});
window.addEventListener("dragover", (event) => {
  event.preventDefault();
  if (carriesFiles(event)) event.dataTransfer.dropEffect = "copy";
});
window.addEventListener("dragleave", () => {
  dragDepth = Math.max(0, dragDepth - 1);
  if (dragDepth === 0) endDrag();
});
window.addEventListener("dragend", endDrag);
window.addEventListener("drop", (event) => {
  event.preventDefault();
  endDrag();
  if (event.dataTransfer?.files.length) uploadAll(event.dataTransfer.files);
});

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
