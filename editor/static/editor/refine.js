// Touch-ups on the editor's preview: smart Keep / Remove marks (the server's engine.hints
// follows them to the whole region they belong to), plain Erase / Restore brushes painted at
// once, the cut-out's parts (parts.js), zoom (zoom.js), undo / redo and reset.
//
// The edit list is the one source of truth: every change saves the whole list with the
// version it started from (POST {version, edits}), and the server's preview replaces the
// quick local one when it answers. Coordinates are the photo's full-resolution pixels.

import { send } from "../js/http.js";
import { setupParts } from "./parts.js";
import { canvasOf, loadImage } from "./preview.js";
import { Zoom } from "./zoom.js";

const MARK_COLOURS = { keep: "rgba(22, 163, 74, 0.6)", remove: "rgba(220, 38, 38, 0.6)" };
const BRUSH_FEATHER = 0.35; // engine.edits.BRUSH_FEATHER
const SMART = new Set(["keep", "remove"]);
const TOOL_KEYS = { c: "compare", k: "keep", r: "remove", e: "erase", b: "restore" };
const SLOW_MS = 250; // show the progress cue for saves slower than this

function typingIn(target) {
  return target.closest?.("input[type=text], input[type=number], textarea, select, [contenteditable]");
}

async function readJson(response) {
  try {
    return await response.json();
  } catch {
    return {};
  }
}

export function setupRefine({ preview, compareControl, state, url, onChange }) {
  const compare = preview.compare;
  const tools = document.getElementById("refine-tools");
  const size = document.getElementById("brush-size");
  const sizeOutput = document.getElementById("brush-size-output");
  const status = document.getElementById("refine-status");
  const error = document.getElementById("refine-error");
  const undoButton = document.getElementById("undo-button");
  const redoButton = document.getElementById("redo-button");
  const overlay = canvasOf(1, 1);
  overlay.className = "compare-layer refine-overlay";
  overlay.setAttribute("aria-hidden", "true");
  compare.append(overlay);
  const zoom = new Zoom(compare, [preview.after, preview.before, overlay]);

  let tool = "compare";
  let version = state.version;
  const history = { lists: [state.edits], at: 0 };
  let saved = state.edits;
  let stroke = null;
  let waiting = null;
  let hover = null;
  // The cut-out shown: the server's, painted on locally while a brush stroke is drawn.
  let served = preview.cutout;
  const work = canvasOf(preview.width, preview.height);
  // A Restore segment is painted here first (the stroke's shape filled with the photo);
  // one canvas for every segment, not a new one per pointermove.
  const patch = canvasOf(preview.width, preview.height);

  const parts = setupParts({
    preview,
    onRemove: (part) => commit([...current(), { tool: "object", point: part.point }]),
    onKeep: (part) => commit(current().filter((edit) => !(edit.tool === "object" && inside(edit.point, part.box)))),
  });
  parts.update(state.parts);

  function current() {
    return history.lists[history.at];
  }

  function inside([x, y], [left, top, right, bottom]) {
    return x >= left && x < right && y >= top && y < bottom;
  }

  function updateButtons() {
    const focused = document.activeElement;
    undoButton.disabled = history.at === 0;
    redoButton.disabled = history.at === history.lists.length - 1;
    // A button disabled under the keyboard's focus drops it to the page: hand it to its pair.
    if (focused === undoButton && undoButton.disabled && !redoButton.disabled) redoButton.focus();
    if (focused === redoButton && redoButton.disabled && !undoButton.disabled) undoButton.focus();
  }

  // ---- Saving: one request at a time; a change made meanwhile is saved right after.

  let pending = null;
  let saving = false;
  let flushed = Promise.resolve(); // settles once every change made so far is saved
  let answers = 0;
  const answered = () => (tools.dataset.saves = String(++answers)); // tests wait on it

  function commit(list) {
    history.lists = history.lists.slice(0, history.at + 1);
    history.lists.push(list);
    history.at += 1;
    updateButtons();
    save();
  }

  function save() {
    pending = current();
    if (!saving) flushed = flush();
  }

  async function flush() {
    saving = true;
    const slow = setTimeout(() => {
      compare.classList.add("is-busy");
      status.textContent = "Working out the edges…";
    }, SLOW_MS);
    while (pending) {
      const list = pending;
      pending = null;
      let response;
      try {
        response = await send(url, { body: JSON.stringify({ version, edits: list }) });
      } catch {
        fail("The change did not reach the server. Check your connection, then Redo to try again.");
        break;
      }
      const data = await readJson(response);
      if (!response.ok) {
        if (response.status === 409 && Number.isInteger(data.version)) version = data.version;
        fail(data.error || `The server answered ${response.status}.`);
        answered();
        break;
      }
      version = data.version;
      saved = list;
      error.textContent = "";
      if (!pending) await show(data);
      answered();
    }
    clearTimeout(slow);
    compare.classList.remove("is-busy");
    saving = false;
  }

  // A save failed: back to what the server holds (Redo tries the change again).
  function fail(message) {
    pending = null;
    error.textContent = message;
    status.textContent = "";
    const at = history.lists.lastIndexOf(saved);
    if (at >= 0) history.at = at;
    updateButtons();
    showCutout(served);
  }

  async function show(data) {
    const image = await loadImage(data.cutout);
    if (data.subject_box) preview.box = data.subject_box;
    served = image;
    showCutout(image);
    parts.update(data.parts);
    status.textContent = data.edits.length ? "Saved." : "Back to the automatic result.";
    onChange?.();
  }

  function showCutout(source) {
    waiting = null;
    preview.setCutout(source);
    drawOverlay();
  }

  // ---- Where things are: full-resolution pixels ↔ the picture on screen ↔ the overlay.

  function fullPoint(event) {
    const rect = preview.after.getBoundingClientRect();
    const [left, top, right, bottom] = preview.fullBox();
    const x = left + ((event.clientX - rect.left) / rect.width) * (right - left);
    const y = top + ((event.clientY - rect.top) / rect.height) * (bottom - top);
    const clamp = (value, max) => Math.round(Math.min(max, Math.max(0, value)) * 10) / 10;
    return [clamp(x, preview.full.width), clamp(y, preview.full.height)];
  }

  // The brush radius in full-resolution pixels: the slider is in screen pixels.
  function fullRadius() {
    const rect = preview.after.getBoundingClientRect();
    const [left, , right] = preview.fullBox();
    return Math.max(0.5, Math.round(Number(size.value) * ((right - left) / rect.width) * 10) / 10);
  }

  function overlayPoint([x, y]) {
    const [left, top] = preview.fullBox();
    const scale = preview.canvasScale(); // the canvas may scale the photo (preview.plan)
    return [(x - left) * scale, (y - top) * scale];
  }

  function tracePath(ctx, points, toCanvas) {
    ctx.beginPath();
    const [first, ...rest] = points.map(toCanvas);
    ctx.moveTo(...first);
    if (!rest.length) ctx.lineTo(first[0] + 0.01, first[1]);
    for (const point of rest) ctx.lineTo(...point);
  }

  function drawOverlay() {
    overlay.width = preview.after.width;
    overlay.height = preview.after.height;
    const ctx = overlay.getContext("2d");
    ctx.lineCap = ctx.lineJoin = "round";
    for (const mark of [waiting, stroke]) {
      if (!mark || !SMART.has(mark.tool)) continue;
      ctx.strokeStyle = MARK_COLOURS[mark.tool];
      ctx.lineWidth = 2 * mark.radius * preview.canvasScale();
      tracePath(ctx, mark.points, overlayPoint);
      ctx.stroke();
    }
    if (hover && tool !== "compare") {
      const [x, y] = overlayPoint(hover);
      ctx.beginPath();
      ctx.arc(x, y, fullRadius() * preview.canvasScale(), 0, 2 * Math.PI);
      ctx.lineWidth = Math.max(1, overlay.width / preview.after.getBoundingClientRect().width);
      ctx.strokeStyle = "rgba(255, 255, 255, 0.9)";
      ctx.stroke();
      ctx.setLineDash([4, 4]);
      ctx.strokeStyle = "rgba(0, 0, 0, 0.9)";
      ctx.stroke();
    }
  }

  // Erase / Restore show at once: painted on a copy of the cut-out at the preview's size.
  function paintLocally(points) {
    const ctx = work.getContext("2d");
    const radius = stroke.radius * preview.scale;
    const blur = Math.max(0.5, (BRUSH_FEATHER * radius) / 2);
    const toWork = ([x, y]) => [x * preview.scale, y * preview.scale];
    ctx.save();
    ctx.lineCap = ctx.lineJoin = "round";
    ctx.lineWidth = 2 * radius * (1 - BRUSH_FEATHER / 2);
    ctx.filter = `blur(${blur}px)`;
    if (stroke.tool === "erase") {
      ctx.globalCompositeOperation = "destination-out";
      tracePath(ctx, points, toWork);
      ctx.stroke();
    } else {
      const patchCtx = patch.getContext("2d");
      patchCtx.save();
      patchCtx.clearRect(0, 0, patch.width, patch.height);
      Object.assign(patchCtx, { lineCap: "round", lineJoin: "round", lineWidth: ctx.lineWidth, filter: ctx.filter });
      tracePath(patchCtx, points, toWork);
      patchCtx.stroke();
      patchCtx.filter = "none";
      patchCtx.globalCompositeOperation = "source-in";
      patchCtx.drawImage(preview.original, 0, 0, work.width, work.height);
      patchCtx.restore();
      ctx.filter = "none";
      ctx.drawImage(patch, 0, 0);
    }
    ctx.restore();
  }

  let frame = 0;
  function redrawSoon() {
    cancelAnimationFrame(frame);
    frame = requestAnimationFrame(() => {
      if (stroke && !SMART.has(stroke.tool)) preview.setCutout(work, { keepBlur: true });
      drawOverlay();
    });
  }

  // ---- Pointers: mouse, pen and one finger draw; two fingers, Space or the middle button pan.

  overlay.addEventListener("pointerdown", (event) => {
    if (tool === "compare") return;
    if (zoom.takesPointer(event)) {
      cancelStroke();
      event.preventDefault();
      return;
    }
    if (event.button !== 0) return;
    event.preventDefault();
    overlay.setPointerCapture(event.pointerId);
    stroke = { tool, radius: fullRadius(), points: [fullPoint(event)], pointer: event.pointerId };
    if (!SMART.has(tool)) {
      const ctx = work.getContext("2d");
      ctx.clearRect(0, 0, work.width, work.height);
      ctx.drawImage(served, 0, 0, work.width, work.height);
      paintLocally(stroke.points);
    }
    redrawSoon();
  });

  overlay.addEventListener("pointermove", (event) => {
    if (zoom.takesPointer(event)) return;
    hover = fullPoint(event);
    if (stroke && event.pointerId === stroke.pointer) {
      const last = stroke.points[stroke.points.length - 1];
      if (Math.hypot(hover[0] - last[0], hover[1] - last[1]) >= Math.max(1, stroke.radius / 4)) {
        stroke.points.push(hover);
        if (!SMART.has(stroke.tool)) paintLocally([last, hover]);
      }
    }
    redrawSoon();
  });

  function endStroke(event) {
    if (zoom.takesPointer(event) || !stroke || event.pointerId !== stroke.pointer) return;
    const { tool: used, radius, points } = stroke;
    // A smart mark stays drawn until the server's answer shows what it did.
    waiting = SMART.has(used) ? stroke : null;
    stroke = null;
    // The painted cut-out stays until the server answers: now with its blurred background.
    if (!waiting) preview.setCutout(work); // redraws, and the overlay with it
    else drawOverlay();
    commit([...current(), { tool: used, radius, points }]);
  }

  function cancelStroke() {
    if (!stroke) return;
    stroke = null;
    showCutout(served);
  }

  overlay.addEventListener("pointerup", endStroke);
  overlay.addEventListener("pointercancel", (event) => {
    zoom.takesPointer(event);
    cancelStroke();
  });
  overlay.addEventListener("pointerleave", () => {
    hover = null;
    if (!stroke) drawOverlay();
  });
  preview.addEventListener("render", () => {
    if (!stroke) drawOverlay();
  });

  // ---- Controls.

  function setTool(value) {
    tool = value;
    const editing = tool !== "compare";
    compareControl.setEnabled(!editing);
    compare.classList.toggle("is-editing", editing);
    compare.dataset.tool = tool;
    tools.dataset.tool = tool; // the brush size shows only for the brushes (refine.css)
    zoom.enabled = editing;
    if (!editing) zoom.reset();
    const radio = document.querySelector(`input[name="refine-tool"][value="${tool}"]`);
    if (radio) radio.checked = true;
    // The slider hidden under the keyboard's focus (Escape) would drop it to the page.
    if (!editing && document.activeElement === size) radio?.focus();
    drawOverlay();
  }

  function setSize(value) {
    size.value = String(Math.min(Number(size.max), Math.max(Number(size.min), value)));
    sizeOutput.value = size.value;
    drawOverlay();
  }

  function undo() {
    if (history.at === 0) return;
    history.at -= 1;
    updateButtons();
    save();
  }

  function redo() {
    if (history.at === history.lists.length - 1) return;
    history.at += 1;
    updateButtons();
    save();
  }

  document.querySelectorAll('input[name="refine-tool"]').forEach((radio) => {
    radio.addEventListener("change", () => setTool(radio.value));
  });
  size.addEventListener("input", () => setSize(Number(size.value)));
  undoButton.addEventListener("click", undo);
  redoButton.addEventListener("click", redo);
  document.getElementById("reset-button").addEventListener("click", () => {
    if (current().length) commit([]);
  });
  document.getElementById("zoom-in").addEventListener("click", () => zoom.zoomIn());
  document.getElementById("zoom-out").addEventListener("click", () => zoom.zoomOut());
  document.getElementById("zoom-fit").addEventListener("click", () => zoom.reset());

  document.addEventListener("keydown", (event) => {
    if (typingIn(event.target)) return;
    const key = event.key.toLowerCase();
    if ((event.ctrlKey || event.metaKey) && (key === "z" || key === "y")) {
      event.preventDefault();
      if (key === "y" || event.shiftKey) redo();
      else undo();
      return;
    }
    if (event.ctrlKey || event.metaKey || event.altKey) return;
    if (event.key === "[" || event.key === "]") setSize(Number(size.value) + (event.key === "]" ? 2 : -2));
    else if (TOOL_KEYS[key] && !event.target.closest?.("input, button")) setTool(TOOL_KEYS[key]);
    else if (tool === "compare") return;
    else if (event.key === "Escape") setTool("compare");
    else if (event.key === "+" || event.key === "=") zoom.zoomIn();
    else if (event.key === "-") zoom.zoomOut();
    else if (event.key === "0") zoom.reset();
    else if (event.key === " " && event.target === document.body) {
      zoom.spaceHeld = true;
      event.preventDefault();
    }
  });
  document.addEventListener("keyup", (event) => {
    if (event.key === " ") zoom.spaceHeld = false;
  });

  updateButtons();
  setSize(Number(size.value));
  // A download waits for this: the server renders the touch-ups it has saved.
  const settled = () => flushed.catch(() => {});
  return { setTool, settled };
}
