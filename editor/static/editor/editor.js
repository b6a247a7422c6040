// Editor page: instant preview (canvas compositing of the cut-out over the chosen
// background), before/after slider, full-resolution downloads rendered by the server,
// and re-running the job with other matting settings.

import { errorMessage, send } from "../js/http.js";
import { updateCard } from "../js/jobcard.js";
import { watchJob } from "../js/jobs.js";

const config = JSON.parse(document.getElementById("editor-config").textContent);

// Styles are set here, not in the markup: the Content-Security-Policy allows no inline styles.
document.querySelectorAll(".swatch-face[data-color]").forEach((face) => {
  face.style.background = face.dataset.color;
});
const compareBox = document.getElementById("compare");
if (compareBox) compareBox.style.aspectRatio = `${config.width} / ${config.height}`;

// ---- A job in progress (first run or a re-run): follow it, then show the new result.

const jobList = document.getElementById("editor-job");
const cardTemplate = document.getElementById("job-card-template");

function followJob(state) {
  let card = jobList.querySelector(".job-card");
  if (!card) {
    card = cardTemplate.content.firstElementChild.cloneNode(true);
    jobList.append(card);
  }
  jobList.hidden = false;
  card.scrollIntoView({ block: "nearest" });
  watchJob(state, (next) => {
    updateCard(card, next);
    if (next.status === "done") window.location.reload();
    if (next.status === "failed") document.getElementById("rerun-button").disabled = false;
  });
}

if (config.state && !config.state.finished) followJob(config.state);

const rerunForm = document.getElementById("rerun-form");
rerunForm.addEventListener("submit", async (event) => {
  event.preventDefault();
  const button = document.getElementById("rerun-button");
  button.disabled = true;
  const response = await send(rerunForm.action, { body: new FormData(rerunForm) });
  if (!response.ok) {
    button.disabled = false;
    window.alert(await errorMessage(response));
    return;
  }
  jobList.querySelector(".job-card")?.remove();
  followJob(await response.json());
});

document.querySelectorAll(".delete-form").forEach((form) => {
  form.addEventListener("submit", (event) => {
    if (!window.confirm(`Delete ${form.dataset.name} and its results? This cannot be undone.`)) {
      event.preventDefault();
    }
  });
});

// ---- Preview.

function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`could not load ${src}`));
    img.src = src;
  });
}

// Same rule as the engine's compose.subject_box: grow by margin × the box's longer side.
function subjectBox(box, marginPercent, width, height) {
  const [left, top, right, bottom] = box;
  const grow = Math.round((marginPercent / 100) * Math.max(right - left, bottom - top));
  return [
    Math.max(0, left - grow),
    Math.max(0, top - grow),
    Math.min(width, right + grow),
    Math.min(height, bottom + grow),
  ];
}

// Same rule as the engine's compose.blur_sigma (sigma at strength 100: 4 % of the longer side).
function blurSigma(strength, width, height) {
  return Math.max(1, (strength / 100) * 0.04 * Math.max(width, height));
}

function drawCover(ctx, img, width, height) {
  const scale = Math.max(width / img.naturalWidth, height / img.naturalHeight);
  const w = img.naturalWidth * scale;
  const h = img.naturalHeight * scale;
  ctx.drawImage(img, (width - w) / 2, (height - h) / 2, w, h);
}

async function setupPreview(result) {
  const form = document.getElementById("render-form");
  const compare = document.getElementById("compare");
  const after = document.getElementById("after-canvas");
  const before = document.getElementById("before-canvas");
  const colorInput = document.getElementById("color-input");
  const blurInput = document.getElementById("blur-input");
  const blurField = document.getElementById("blur-field");
  const cropInput = document.getElementById("crop-input");
  const marginInput = document.getElementById("margin-input");
  const [original, cutout] = await Promise.all([
    loadImage(result.original),
    loadImage(result.cutout),
  ]);
  const width = cutout.naturalWidth;
  const height = cutout.naturalHeight;
  const scale = width / config.width;
  const composite = document.createElement("canvas");
  composite.width = width;
  composite.height = height;
  const photos = new Map();
  const choice = { kind: "transparent", color: "#ffffff", photo: null };

  function cropBox() {
    if (!cropInput.checked || result.subject_box.length !== 4) return [0, 0, width, height];
    const full = subjectBox(result.subject_box, Number(marginInput.value), config.width, config.height);
    return full.map((value) => Math.round(value * scale));
  }

  function drawBackground(ctx) {
    if (choice.kind === "color") {
      ctx.fillStyle = choice.color;
      ctx.fillRect(0, 0, width, height);
    } else if (choice.kind === "photo" && choice.photo) {
      drawCover(ctx, choice.photo, width, height);
    } else if (choice.kind === "blur") {
      const sigma = blurSigma(Number(blurInput.value), config.width, config.height) * scale;
      // Draw past the edges so the blur does not fade to transparent at the borders.
      const pad = Math.ceil(sigma * 2);
      ctx.filter = `blur(${sigma}px)`;
      ctx.drawImage(original, -pad, -pad, width + 2 * pad, height + 2 * pad);
      ctx.filter = "none";
    }
  }

  function render() {
    const ctx = composite.getContext("2d");
    ctx.clearRect(0, 0, width, height);
    drawBackground(ctx);
    ctx.drawImage(cutout, 0, 0, width, height);
    const [left, top, right, bottom] = cropBox();
    const w = right - left;
    const h = bottom - top;
    for (const [canvas, source] of [[after, composite], [before, original]]) {
      canvas.width = w;
      canvas.height = h;
      canvas.getContext("2d").drawImage(source, left, top, w, h, 0, 0, w, h);
    }
    compare.style.aspectRatio = `${w} / ${h}`;
    compare.parentElement.style.setProperty("--ratio", String(w / h));
    after.dataset.background = form.elements.background.value;
    compare.classList.toggle("is-opaque", choice.kind !== "transparent");
  }

  async function applyChoice(value) {
    const [kind, detail] = value.split(/:(.*)/s);
    const radio = form.querySelector(`input[name="bg"][value="${CSS.escape(value)}"]`);
    form.elements.preset.value = "";
    form.elements.color.value = "";
    blurField.hidden = kind !== "blur";
    if (kind === "color") {
      const hex = detail === "custom" ? colorInput.value : detail;
      Object.assign(choice, { kind: "color", color: hex });
      form.elements.background.value = "color";
      form.elements.color.value = hex;
    } else if (kind === "preset" || kind === "custom") {
      const src = radio.dataset.src;
      if (!photos.has(src)) photos.set(src, await loadImage(src));
      Object.assign(choice, { kind: "photo", photo: photos.get(src) });
      form.elements.background.value = kind;
      if (kind === "preset") form.elements.preset.value = detail;
    } else {
      choice.kind = kind;
      form.elements.background.value = kind;
    }
    updateFormatHint();
    render();
  }

  form.addEventListener("change", (event) => {
    if (event.target.name === "bg") applyChoice(event.target.value);
    else render();
  });
  form.addEventListener("input", (event) => {
    if (event.target === blurInput) document.getElementById("blur-output").value = blurInput.value;
    if (event.target === marginInput) document.getElementById("margin-output").value = `${marginInput.value}%`;
    if (event.target === blurInput || event.target === marginInput) render();
  });
  const customColorFace = document.getElementById("custom-color-face");
  const customColorRadio = document.getElementById("bg-custom-color");
  customColorFace.style.background = colorInput.value;
  colorInput.addEventListener("input", () => {
    customColorFace.style.background = colorInput.value;
    customColorRadio.checked = true;
    applyChoice("color:custom");
  });

  document.getElementById("compare-range").addEventListener("input", (event) => {
    compare.style.setProperty("--pos", `${event.target.value}%`);
  });

  setupBackgroundUpload(() => applyChoice("custom"));
  setupDownload(form);
  render();
  compare.dataset.ready = "true";
}

function setupBackgroundUpload(onUploaded) {
  const fileInput = document.getElementById("background-file");
  const error = document.getElementById("background-error");
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    if (!file) return;
    error.textContent = "";
    const body = new FormData();
    body.append("file", file);
    const response = await send(fileInput.dataset.url, { body });
    fileInput.value = "";
    if (!response.ok) {
      error.textContent = await errorMessage(response);
      return;
    }
    const { url } = await response.json();
    const radio = document.getElementById("bg-custom");
    radio.dataset.src = url;
    document.getElementById("custom-bg-thumb").src = url;
    document.getElementById("custom-bg-swatch").hidden = false;
    radio.checked = true;
    onUploaded();
  });
}

function updateFormatHint() {
  const form = document.getElementById("render-form");
  const mask = form.elements.output.value === "mask";
  form.elements.format.disabled = mask;
  const jpeg = form.elements.format.querySelector('option[value="jpeg"]');
  // JPEG has no transparency: offer it only with a background.
  jpeg.disabled = form.elements.background.value === "transparent";
  if (jpeg.disabled && form.elements.format.value === "jpeg") form.elements.format.value = "png";
}

function filenameFrom(response, fallback) {
  const header = response.headers.get("Content-Disposition") || "";
  const encoded = header.match(/filename\*=utf-8''([^;]+)/i);
  if (encoded) return decodeURIComponent(encoded[1]);
  const quoted = header.match(/filename="((?:[^"\\]|\\.)*)"/);
  return quoted ? quoted[1].replace(/\\(.)/g, "$1") : fallback;
}

function setupDownload(form) {
  const error = document.getElementById("download-error");
  const button = document.getElementById("download-button");
  form.elements.output.addEventListener("change", updateFormatHint);
  form.addEventListener("submit", async (event) => {
    event.preventDefault();
    error.textContent = "";
    const params = new URLSearchParams();
    for (const [key, value] of new FormData(form)) if (key !== "bg") params.append(key, value);
    button.disabled = true;
    button.textContent = "Rendering…";
    try {
      const response = await fetch(`${form.action}?${params}`, { credentials: "same-origin" });
      if (!response.ok) {
        error.textContent = await errorMessage(response);
        return;
      }
      const blob = await response.blob();
      const link = document.createElement("a");
      link.href = URL.createObjectURL(blob);
      link.download = filenameFrom(response, "download");
      document.body.append(link);
      link.click();
      link.remove();
      setTimeout(() => URL.revokeObjectURL(link.href), 10000);
    } catch {
      error.textContent = "The download failed: the server could not be reached.";
    } finally {
      button.disabled = false;
      button.textContent = "Download";
    }
  });
  updateFormatHint();
}

if (config.result) setupPreview(config.result);
