// The download settings chosen on the upload page for this image's batch
// (Image.render_settings, RenderForm's fields as sent): the editor's form starts from them.
// Returns the background choice ("bg" radio value) to apply, or null when nothing was saved.
// The person's own choices are kept the same way across a re-run, which loads the page
// again: keepSettings before it, keptSettings after (this tab's sessionStorage, per image).

// Fields the swatches set (hidden inputs): chosen through their radio buttons instead.
const BACKGROUND_FIELDS = new Set(["background", "color", "preset"]);
const TRUE = new Set(["on", "true", "True", "1"]);

function pick(form, value) {
  const radio = form.querySelector(`input[name="bg"][value="${CSS.escape(value)}"]`);
  if (!radio || radio.closest("[hidden]")) return null;
  radio.checked = true;
  return value;
}

export function applySavedSettings(form, saved) {
  if (!saved || Object.keys(saved).length === 0) return null;
  // Sliders that start switched off behind a checkbox of their own: switched on first.
  const switches = { scale: "scale-check", position_x: "position-check" };
  for (const [name, id] of Object.entries(switches)) {
    const toggle = document.getElementById(id);
    if (!toggle || !(name in saved)) continue;
    toggle.checked = true;
    toggle.dispatchEvent(new Event("change", { bubbles: true }));
  }
  // Every other field of the form by its name, so fields RenderForm gains follow too; a
  // change event each lets the page enable what depends on them (a custom canvas's size).
  const changed = [];
  for (const [name, value] of Object.entries(saved)) {
    const element = form.elements[name];
    if (BACKGROUND_FIELDS.has(name) || !element || element instanceof RadioNodeList) continue;
    if (element.type === "checkbox") element.checked = TRUE.has(value);
    else element.value = value;
    changed.push(element);
  }
  changed.forEach((element) => element.dispatchEvent(new Event("change", { bubbles: true })));
  // Each slider's read-out shows its new value, with the unit it had ("5%", "90°").
  form.querySelectorAll("output[for]").forEach((output) => {
    const input = document.getElementById(output.htmlFor.value);
    if (input) output.value = input.value + output.textContent.replace(/^[-\d.]+/, "");
  });
  const kind = saved.background || "transparent";
  if (kind === "color" && saved.color) {
    const hex = saved.color.toLowerCase();
    if (pick(form, `color:${hex}`)) return `color:${hex}`;
    const colorInput = document.getElementById("color-input");
    colorInput.value = hex;
    document.getElementById("custom-color-face").style.background = hex;
    return pick(form, "color:custom");
  }
  if (kind === "preset" && saved.preset) return pick(form, `preset:${saved.preset}`);
  if (kind === "blur" || kind === "custom") return pick(form, kind);
  return pick(form, "transparent");
}

// The editor form's choices as RenderForm's fields (a disabled input is not one, so a switched
// off slider stays off), with each checkbox said either way: "" is unticked.
export function formSettings(form) {
  const settings = {};
  for (const element of form.elements) {
    if (!element.name || element.name === "bg" || element.disabled) continue;
    settings[element.name] = element.type === "checkbox" ? (element.checked ? "on" : "") : element.value;
  }
  return settings;
}

const storageKey = (imageId) => `editor-settings:${imageId}`;

export function keepSettings(imageId, form) {
  try {
    sessionStorage.setItem(storageKey(imageId), JSON.stringify(formSettings(form)));
  } catch {
    // Storage full or switched off: the page comes back with the saved or default settings.
  }
}

// The settings kept for this image, or null. ``forget``: remove them once read (the re-run
// that kept them is over; while it runs, a reload still finds them).
export function keptSettings(imageId, { forget }) {
  try {
    const kept = sessionStorage.getItem(storageKey(imageId));
    if (forget) sessionStorage.removeItem(storageKey(imageId));
    return kept ? JSON.parse(kept) : null;
  } catch {
    return null;
  }
}
