// Editor page: wires the modules together. preview.js draws what the download will be
// (made here and handed to the modules that change it), compare.js is the before/after divider,
// download.js asks the server for the file, follow.js follows a job, and this file turns
// the form's choices into the preview's settings.

import { errorMessage, send } from "../js/http.js";
import { deleteWithUndo } from "../js/undo.js";
import { setupCompare } from "./compare.js";
import { setupDownload } from "./download.js";
import { setupJobFollowing } from "./follow.js";
import { setupLayoutControls } from "./layout_controls.js";
import { createPreview, loadImage } from "./preview.js";
import { setupRefine } from "./refine.js";
import { applySavedSettings, keptSettings } from "./saved_settings.js";

const config = JSON.parse(document.getElementById("editor-config").textContent);

// Styles are set here, not in the markup: the Content-Security-Policy allows no inline styles.
document.querySelectorAll(".swatch-face[data-color]").forEach((face) => {
  face.style.background = face.dataset.color;
});
const compareBox = document.getElementById("compare");
if (compareBox) compareBox.style.aspectRatio = `${config.width} / ${config.height}`;

const imageId = () => document.querySelector(".delete-form").dataset.image;
setupJobFollowing(config, imageId());
setupDelete();
if (config.result) setupEditing(config.result);

// ---- Deleting the image, with a few seconds to undo it; then on to the gallery.

function setupDelete() {
  const form = document.querySelector(".delete-form");
  // The title stays; the picture and the options go while the delete can still be undone.
  const parts = document.querySelectorAll("#editor-layout > .stage, #editor-layout > .panel");
  const note = document.getElementById("deleted-note");
  form.addEventListener("submit", (event) => {
    event.preventDefault();
    deleteWithUndo({
      form,
      id: form.dataset.image,
      name: form.dataset.name,
      hide: () => {
        parts.forEach((part) => (part.hidden = true));
        note.hidden = false;
      },
      onRestore: ({ hadFocus }) => {
        parts.forEach((part) => (part.hidden = false));
        note.hidden = true;
        if (hadFocus) form.querySelector("button").focus();
      },
      onDeleted: () => window.location.assign(form.dataset.gallery),
    });
  });
}

// ---- The form's choices → the preview, the size hint and the download's fields.

async function setupEditing(result) {
  const form = document.getElementById("render-form");
  const compare = document.getElementById("compare");
  const colorInput = document.getElementById("color-input");
  const blurInput = document.getElementById("blur-input");
  const blurField = document.getElementById("blur-field");
  const cropInput = document.getElementById("crop-input");
  const marginInput = document.getElementById("margin-input");
  const hint = document.getElementById("format-hint");
  const errors = [document.getElementById("background-error"), document.getElementById("download-error")];
  const clearErrors = () => errors.forEach((error) => (error.textContent = ""));

  const compareControl = setupCompare(compare);
  const preview = await createPreview({
    compare,
    after: document.getElementById("after-canvas"),
    before: document.getElementById("before-canvas"),
    full: { width: config.width, height: config.height },
    result,
  });
  const photos = new Map();

  function updateHint() {
    const [w, h] = preview.outputSize();
    const what = preview.output === "mask" ? "alpha mask" : "full resolution";
    hint.textContent = `${w}×${h} px, ${what}${preview.crop.enabled ? ", cropped" : ""}`;
  }

  function updateFormats() {
    const mask = form.elements.output.value === "mask";
    form.elements.format.disabled = mask;
    const jpeg = form.elements.format.querySelector('option[value="jpeg"]');
    // JPEG has no transparency: offer it only with a background.
    jpeg.disabled = form.elements.background.value === "transparent";
    if (jpeg.disabled && form.elements.format.value === "jpeg") form.elements.format.value = "png";
  }

  function readSettings() {
    preview.crop = { enabled: cropInput.checked, margin: Number(marginInput.value) };
    marginInput.disabled = !cropInput.checked;
    preview.output = form.elements.output.value;
    preview.background.strength = Number(blurInput.value);
    Object.assign(preview, readLayout());
    updateFormats();
    updateHint();
  }

  // Sliders move many times a second: draw at most once a frame.
  let frame = 0;
  function redrawSoon() {
    readSettings();
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => preview.redraw());
  }
  const readLayout = setupLayoutControls(form, redrawSoon);

  async function applyChoice(value) {
    const [kind, detail] = value.split(/:(.*)/s);
    const radio = form.querySelector(`input[name="bg"][value="${CSS.escape(value)}"]`);
    form.elements.preset.value = "";
    form.elements.color.value = "";
    blurField.hidden = kind !== "blur";
    if (kind === "color") {
      const hex = detail === "custom" ? colorInput.value : detail;
      Object.assign(preview.background, { kind: "color", color: hex });
      form.elements.background.value = "color";
      form.elements.color.value = hex;
    } else if (kind === "preset" || kind === "custom") {
      const src = radio.dataset.src;
      if (!photos.has(src)) photos.set(src, await loadImage(src));
      Object.assign(preview.background, { kind: "photo", photo: photos.get(src) });
      form.elements.background.value = kind;
      if (kind === "preset") form.elements.preset.value = detail;
    } else {
      preview.background.kind = kind;
      form.elements.background.value = kind;
    }
    preview.after.dataset.background = form.elements.background.value;
    readSettings();
    preview.redraw();
  }

  form.addEventListener("change", (event) => {
    clearErrors();
    if (event.target.name === "bg") applyChoice(event.target.value);
    else redrawSoon();
  });
  form.addEventListener("input", (event) => {
    if (event.target === blurInput) document.getElementById("blur-output").value = blurInput.value;
    if (event.target === marginInput) document.getElementById("margin-output").value = `${marginInput.value}%`;
    if (event.target === blurInput || event.target === marginInput) redrawSoon();
  });
  const customColorFace = document.getElementById("custom-color-face");
  const customColorRadio = document.getElementById("bg-custom-color");
  customColorFace.style.background = colorInput.value;
  colorInput.addEventListener("input", () => {
    customColorFace.style.background = colorInput.value;
    customColorRadio.checked = true;
    applyChoice("color:custom");
  });

  setupBackgroundUpload(() => {
    clearErrors();
    applyChoice("custom");
  });
  let refine = null;
  setupDownload(form, { onSuccess: clearErrors, ready: () => refine?.settled() });
  // Settings kept across a re-run (follow.js) come first: they are the person's latest.
  const running = Boolean(config.state && !config.state.finished);
  const settings = keptSettings(imageId(), { forget: !running }) ?? config.settings;
  const saved = applySavedSettings(form, settings);
  if (saved) await applyChoice(saved);
  // JPEG is offered once the background is not transparent: chosen again after it.
  const jpeg = form.elements.format.querySelector('option[value="jpeg"]');
  if (settings?.format === "jpeg" && !jpeg.disabled) form.elements.format.value = "jpeg";
  preview.after.dataset.background = form.elements.background.value;
  readSettings();
  preview.redraw();
  refine = setupRefine({ preview, compareControl, state: result.edits, url: result.edits_url, onChange: updateHint });
  compare.dataset.ready = "true";
}

function setupBackgroundUpload(onUploaded) {
  const fileInput = document.getElementById("background-file");
  const button = document.getElementById("background-button");
  const error = document.getElementById("background-error");
  button.addEventListener("click", () => {
    if (!button.hasAttribute("aria-disabled")) fileInput.click();
  });
  fileInput.addEventListener("change", async () => {
    const file = fileInput.files[0];
    if (!file) return;
    error.textContent = "";
    // Marked busy, not disabled: disabling the button would drop the keyboard's focus.
    button.setAttribute("aria-disabled", "true");
    button.classList.add("is-busy");
    const body = new FormData();
    body.append("file", file);
    let response;
    try {
      response = await send(fileInput.dataset.url, { body });
    } catch {
      error.textContent = "The background did not reach the server. Check your connection and try again.";
      return;
    } finally {
      fileInput.value = "";
      button.removeAttribute("aria-disabled");
      button.classList.remove("is-busy");
    }
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
    radio.focus();
    onUploaded();
  });
}
