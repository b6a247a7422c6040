// The download settings chosen on the upload page for this image's batch
// (Image.render_settings, RenderForm's fields as sent): the editor's form starts from them.
// Returns the background choice ("bg" radio value) to apply, or null when nothing was saved.

function pick(form, value) {
  const radio = form.querySelector(`input[name="bg"][value="${CSS.escape(value)}"]`);
  if (!radio || radio.closest("[hidden]")) return null;
  radio.checked = true;
  return value;
}

export function applySavedSettings(form, saved) {
  if (!saved || Object.keys(saved).length === 0) return null;
  const colorInput = document.getElementById("color-input");
  const blurInput = document.getElementById("blur-input");
  const marginInput = document.getElementById("margin-input");
  const cropInput = document.getElementById("crop-input");
  if (saved.output) form.elements.output.value = saved.output;
  if (saved.format) form.elements.format.value = saved.format;
  cropInput.checked = saved.crop === "on" || saved.crop === "true" || saved.crop === "True";
  if (saved.margin) marginInput.value = saved.margin;
  document.getElementById("margin-output").value = `${marginInput.value}%`;
  if (saved.blur) blurInput.value = saved.blur;
  document.getElementById("blur-output").value = blurInput.value;
  const kind = saved.background || "transparent";
  if (kind === "color" && saved.color) {
    const hex = saved.color.toLowerCase();
    if (pick(form, `color:${hex}`)) return `color:${hex}`;
    colorInput.value = hex;
    document.getElementById("custom-color-face").style.background = hex;
    return pick(form, "color:custom");
  }
  if (kind === "preset" && saved.preset) return pick(form, `preset:${saved.preset}`);
  if (kind === "blur" || kind === "custom") return pick(form, kind);
  return pick(form, "transparent");
}
