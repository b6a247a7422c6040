// Zoom and pan for detail work on the preview: buttons, the wheel, keys (+ - 0), pinch with
// two fingers, and dragging with the middle button or with Space held. The layers move
// together by one CSS transform; refine.js maps pointers through their on-screen box.

const MAX_ZOOM = 8;
const STEP = 1.25;

export class Zoom {
  constructor(compare, layers) {
    Object.assign(this, { compare, layers, zoom: 1, x: 0, y: 0, enabled: false });
    this.touches = new Map();
    this.spaceHeld = false;
    compare.addEventListener("wheel", (event) => this.onWheel(event), { passive: false });
  }

  apply() {
    const { width, height } = this.compare.getBoundingClientRect();
    // Keep the picture covering the box: no empty margins when zoomed in.
    this.x = Math.min(0, Math.max(width - width * this.zoom, this.x));
    this.y = Math.min(0, Math.max(height - height * this.zoom, this.y));
    const transform = this.zoom === 1 ? "" : `translate(${this.x}px, ${this.y}px) scale(${this.zoom})`;
    for (const layer of this.layers) layer.style.transform = transform;
    // The divider's clip on the original follows the zoom (app.css, .compare-before).
    this.compare.style.setProperty("--zoom-x", `${this.x}px`);
    this.compare.style.setProperty("--zoom", String(this.zoom));
    this.compare.classList.toggle("is-zoomed", this.zoom > 1);
  }

  // Zoom by `factor` around the point (clientX, clientY), or the middle without one.
  zoomBy(factor, clientX, clientY) {
    const box = this.compare.getBoundingClientRect();
    const cx = (clientX ?? box.left + box.width / 2) - box.left;
    const cy = (clientY ?? box.top + box.height / 2) - box.top;
    const next = Math.min(MAX_ZOOM, Math.max(1, this.zoom * factor));
    this.x = cx - (cx - this.x) * (next / this.zoom);
    this.y = cy - (cy - this.y) * (next / this.zoom);
    this.zoom = next;
    this.apply();
  }

  zoomIn() {
    this.zoomBy(STEP);
  }

  zoomOut() {
    this.zoomBy(1 / STEP);
  }

  reset() {
    Object.assign(this, { zoom: 1, x: 0, y: 0 });
    this.apply();
  }

  panBy(dx, dy) {
    this.x += dx;
    this.y += dy;
    this.apply();
  }

  onWheel(event) {
    if (!this.enabled) return;
    event.preventDefault();
    this.zoomBy(event.deltaY < 0 ? STEP : 1 / STEP, event.clientX, event.clientY);
  }

  // Pointer handling for refine.js: true when the event belongs to a pan or pinch (so it must
  // not draw). Two touches pinch and pan; a middle-button or Space drag pans.
  takesPointer(event) {
    if (event.type === "pointerdown") {
      const pans = event.button === 1 || this.spaceHeld;
      if (event.pointerType === "touch") this.touches.set(event.pointerId, [event.clientX, event.clientY]);
      if (this.touches.size >= 2 || pans) {
        this.gesture = { pan: pans && this.touches.size < 2, x: event.clientX, y: event.clientY };
        this.gesture.start = this.pinchState();
        return true;
      }
      return false;
    }
    if (event.type === "pointermove") {
      if (this.touches.has(event.pointerId)) this.touches.set(event.pointerId, [event.clientX, event.clientY]);
      if (!this.gesture) return false;
      if (this.gesture.pan) {
        this.panBy(event.clientX - this.gesture.x, event.clientY - this.gesture.y);
        Object.assign(this.gesture, { x: event.clientX, y: event.clientY });
      } else if (this.touches.size >= 2) {
        const now = this.pinchState();
        this.zoomBy(now.distance / this.gesture.start.distance, now.x, now.y);
        this.panBy(now.x - this.gesture.start.x, now.y - this.gesture.start.y);
        this.gesture.start = now;
      }
      return true;
    }
    // pointerup / pointercancel
    this.touches.delete(event.pointerId);
    const had = Boolean(this.gesture);
    // A pan ends with its pointer; a pinch once fewer than two fingers are down.
    if (this.gesture?.pan || this.touches.size < 2) this.gesture = null;
    return had;
  }

  pinchState() {
    const points = [...this.touches.values()];
    if (points.length < 2) return { distance: 1, x: 0, y: 0 };
    const [[x1, y1], [x2, y2]] = points;
    return { distance: Math.max(1, Math.hypot(x2 - x1, y2 - y1)), x: (x1 + x2) / 2, y: (y1 + y2) / 2 };
  }
}
