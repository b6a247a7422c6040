// Render a job's state into a progress card (editor/_job_card.html).

const STAGE_ORDER = ["decoding", "segmenting", "refining", "matting", "composing", "encoding"];

export function updateCard(card, state) {
  card.dataset.job = state.job;
  card.dataset.status = state.status;
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

export function showError(card, message) {
  card.classList.add("is-error");
  card.dataset.status = "rejected";
  card.querySelector(".progress-row").hidden = true;
  card.querySelector(".stage-steps").hidden = true;
  card.querySelector(".job-status").textContent = message;
}

function showImage(img, url) {
  if (!img || !url) return;
  if (img.getAttribute("src") !== url) img.src = url;
  img.hidden = false;
}
