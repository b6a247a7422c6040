// The Canvas and Shadow options of the editor: which inputs are on, their shown values, and
// what they mean for the preview (preview.layout, preview.shadow). A disabled input is not
// sent with the download, so "Resize the subject" off means the subject's own size
// (RenderForm's scale empty) and "Place the subject" off means centred.

const $ = (id) => document.getElementById(id);

export function setupLayoutControls(form, onChange) {
  const canvas = $("canvas-input");
  const sizeField = $("canvas-size-field");
  const width = $("canvas-width-input");
  const height = $("canvas-height-input");
  const scaleCheck = $("scale-check");
  const scale = $("scale-input");
  const positionCheck = $("position-check");
  const positionX = $("position-x-input");
  const positionY = $("position-y-input");
  const shadow = $("shadow-input");
  const shadowInputs = ["direction", "distance", "softness", "opacity"].map((name) => $(`shadow-${name}-input`));
  const units = { "shadow-direction-input": "°" };

  function showValue(input) {
    const output = form.querySelector(`output[for="${input.id}"]`);
    if (output) output.value = `${input.value}${units[input.id] ?? "%"}`;
  }

  function sync() {
    const custom = canvas.value === "custom";
    sizeField.hidden = !custom;
    width.disabled = height.disabled = !custom;
    scale.disabled = !scaleCheck.checked;
    positionX.disabled = positionY.disabled = !positionCheck.checked;
    for (const input of shadowInputs) input.disabled = !shadow.checked;
  }

  form.addEventListener("input", (event) => {
    const input = event.target;
    if (input === scale || input === positionX || input === positionY || shadowInputs.includes(input)) {
      showValue(input);
      onChange();
    } else if (input === width || input === height) {
      onChange();
    }
  });
  form.addEventListener("change", sync);
  for (const input of [scale, positionX, positionY, ...shadowInputs]) showValue(input);
  sync();

  // What the preview reads (see preview.js planLayout and drawShadow).
  return function read() {
    sync();
    const size = (input) => Math.min(10000, Math.max(1, Math.round(Number(input.value)) || 1));
    return {
      layout: {
        canvas: canvas.value,
        canvasWidth: size(width),
        canvasHeight: size(height),
        scale: scaleCheck.checked ? Number(scale.value) / 100 : null,
        position: positionCheck.checked ? [Number(positionX.value) / 100, Number(positionY.value) / 100] : null,
      },
      shadow: {
        enabled: shadow.checked,
        direction: Number(shadowInputs[0].value),
        distance: Number(shadowInputs[1].value),
        softness: Number(shadowInputs[2].value),
        opacity: Number(shadowInputs[3].value),
      },
    };
  };
}
