// A panel of download settings for several images (editor/_batch_settings.html): shows only
// the fields the chosen background, crop and output use, and offers JPEG only where there
// is something to put behind the subject (JPEG has no transparency).

function field(panel, name) {
  return panel.querySelector(`[data-field="${name}"]`);
}

function control(panel, name) {
  return field(panel, name)?.querySelector("input, select, textarea") || null;
}

export function setupSettings(panel) {
  const background = control(panel, "background");
  const output = control(panel, "output");
  const format = control(panel, "format");
  const crop = control(panel, "crop");

  function update() {
    const kind = background?.value || "transparent";
    const mask = output?.value === "mask";
    const show = { color: kind === "color", preset: kind === "preset", blur: kind === "blur" };
    for (const [name, visible] of Object.entries(show)) {
      const wrapper = field(panel, name);
      if (wrapper) wrapper.hidden = !visible || mask;
    }
    const margin = field(panel, "margin");
    if (margin && crop) margin.hidden = !crop.checked;
    // A custom canvas's size, and a shadow's details, only when they apply.
    const canvas = control(panel, "canvas");
    for (const name of ["canvas_width", "canvas_height"]) {
      if (field(panel, name)) field(panel, name).hidden = canvas?.value !== "custom";
    }
    const shadow = control(panel, "shadow");
    panel.querySelectorAll('[data-field^="shadow_"]').forEach((wrapper) => {
      wrapper.hidden = !shadow?.checked || mask;
    });
    if (shadow) field(panel, "shadow").hidden = mask;
    if (field(panel, "background")) field(panel, "background").hidden = mask;
    if (format) {
      field(panel, "format").hidden = mask; // a mask is always a PNG
      const jpeg = format.querySelector('option[value="jpeg"]');
      if (jpeg) jpeg.disabled = kind === "transparent" && !mask;
      if (jpeg?.disabled && format.value === "jpeg") format.value = "png";
    }
  }

  panel.addEventListener("change", update);
  update();
  return { update };
}

// The panel's fields as [name, value] pairs (prefixed names as the form renders them).
export function settingsEntries(panel) {
  const entries = [];
  for (const element of panel.querySelectorAll("[data-field] input, [data-field] select")) {
    if (!element.name) continue;
    if (element.type === "checkbox" && !element.checked) continue;
    entries.push([element.name, element.value]);
  }
  return entries;
}
