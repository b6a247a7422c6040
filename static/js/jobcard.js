// Render a job's state into a progress card (editor/_job_card.html). The cards are not live
// regions themselves: the page's one live region says when a job ends (announce.js).

import { announce } from "./announce.js";

const STAGE_ORDER = ["decoding", "segmenting", "refining", "matting", "composing", "encoding"];

function nameOf(card) {
  return card.querySelector(".job-name")?.textContent.trim() || "The image";
}

export function updateCard(card, state) {
  const before = card.dataset.status;
  card.dataset.job = state.job;
  card.dataset.status = state.status;
  if (before && before !== state.status) {
    if (state.status === "done") announce(`${nameOf(card)}: background removed.`);
    if (state.status === "failed") announce(`${nameOf(card)}: ${state.error || "processing failed."}`);
  }
  const seen = new Set((card.dataset.stagesSeen || "").split(" ").filter(Boolean));
  if (state.status === "running" && STAGE_ORDER.includes(state.stage)) seen.add(state.stage);
  card.dataset.stagesSeen = [...seen].join(" ");

  const progress = card.querySelector(".job-progress");
  progress.value = state.percent;
  progress.setAttribute("aria-valuetext", `${state.percent}% — ${state.stage_label}`);
  card.querySelector(".job-percent").textContent = `${state.percent}%`;

  const current = STAGE_ORDER.indexOf(state.stage);
  card.querySelectorAll(".stage-steps li").forEach((step) => {
    const index = STAGE_ORDER.indexOf(step.dataset.stage);
    const finished = state.status === "done" || (current >= 0 && index < current);
    step.classList.toggle("is-done", finished);
    step.classList.toggle("is-current", state.status === "running" && index === current);
  });

  const status = card.querySelector(".job-status");
  card.classList.toggle("is-error", state.status === "failed");
  card.classList.toggle("is-done", state.status === "done");
  if (state.status === "failed") {
    status.textContent = state.error || "Processing failed.";
  } else if (state.status === "done") {
    status.textContent = "Done — background removed.";
  } else {
    status.textContent = state.stage_label;
  }

  if (state.status === "done") {
    showImage(card.querySelector(".thumb-original"), state.urls.thumb_original);
    showImage(card.querySelector(".thumb-cutout"), state.urls.thumb_cutout);
    for (const [selector, url] of [[".job-open", state.urls.editor], [".job-download", state.urls.cutout]]) {
      const link = card.querySelector(selector);
      if (link) {
        link.href = url;
        link.hidden = false;
      }
    }
  }
}

// A file the server (or the page) refused: the message alone, as a sentence, with Dismiss;
// and Retry where sending the same file again can help (``retry``: a busy server, a lost
// connection), not for a file that is refused for what it is (corrupt, unsupported, too big).
export function showError(card, message, { retry = true } = {}) {
  const sentence = /[.!?…]$/.test(message.trim()) ? message.trim() : `${message.trim()}.`;
  card.classList.add("is-error");
  card.dataset.status = "rejected";
  card.querySelector(".progress-row").hidden = true;
  card.querySelector(".stage-steps").hidden = true;
  card.querySelector(".job-status").textContent = sentence;
  card.querySelector(".job-retry").hidden = !retry;
  const dismiss = card.querySelector(".job-dismiss");
  dismiss.hidden = false;
  dismiss.classList.toggle("button-primary", !retry); // the card's one action then
  announce(sentence);
}

// Back to a fresh "uploading" card (Retry).
export function resetCard(card) {
  card.classList.remove("is-error");
  delete card.dataset.status;
  card.querySelector(".progress-row").hidden = false;
  card.querySelector(".stage-steps").hidden = false;
  card.querySelector(".job-status").textContent = "Uploading…";
  for (const button of card.querySelectorAll(".job-retry, .job-dismiss")) button.hidden = true;
}

function showImage(img, url) {
  if (!img || !url) return;
  if (img.getAttribute("src") !== url) img.src = url;
  img.hidden = false;
}
