// The editor's preview: the cut-out composited over the chosen background in a canvas, the
// way the server renders the download (bgremover/engine/compose.py, layout.py, scene.py,
// shadow.py, pipeline.render_with_info): same canvas and layout, same background fitting,
// same blur (blur.js), same crop box, same shadow, the alpha mask as a mask.
//
// editor.js makes the one Preview (createPreview) and hands it to the modules that change
// what it shows:
//   preview.setCutout(bitmapOrCanvas);   // a new cut-out (same size as the preview), redrawn
//   preview.redraw();                    // after changing anything else it reads
//   preview.addEventListener("render", …) // after every redraw

import { blurredBackground } from "./blur.js";

export function loadImage(src) {
  return new Promise((resolve, reject) => {
    const img = new Image();
    img.onload = () => resolve(img);
    img.onerror = () => reject(new Error(`could not load ${src}`));
    img.src = src;
  });
}

// Canvas and layout: bgremover/engine/layout.py's plan_layout for the editor's options, with
// the same arithmetic and rounding (half up). A plan is a canvas of width×height full-size
// pixels and where the photo lands on it: photo (x, y) → (left + scale·x, top + scale·y).
export const CANVAS_PIXEL_LIMIT = 50_000_000;
const ASPECTS = { square: [1, 1], "4:5": [4, 5], "16:9": [16, 9] };
const PREVIEW_MAX_SIDE = 2048;
const halfUp = (value) => Math.floor(value + 0.5);

function canvasFor(layout, width, height) {
  if (layout.canvas === "custom") return [layout.canvasWidth, layout.canvasHeight];
  const aspect = ASPECTS[layout.canvas];
  if (!aspect) return [width, height];
  const [a, b] = aspect;
  if (width * b >= height * a) return [width, Math.max(1, halfUp((width * b) / a))];
  return [Math.max(1, halfUp((height * a) / b)), height];
}

// layout = { cropMargin: percent or null, canvas, canvasWidth, canvasHeight,
//            scale: 0.1–1 or null, position: [x, y] in 0–1 or null }
export function planLayout(width, height, subject, layout) {
  const found = subject && subject.length === 4 ? subject : [0, 0, width, height];
  const base = layout.cropMargin === null ? [0, 0, width, height] : subjectBox(found, layout.cropMargin, width, height);
  const framed = layout.cropMargin === null ? found : base;
  const [bl, bt, br, bb] = base;
  const [bw, bh] = [br - bl, bb - bt];
  const [cw, ch] = canvasFor(layout, bw, bh);
  const [fl, ft, fr, fb] = framed;
  const [fw, fh] = [Math.max(1, fr - fl), Math.max(1, fb - ft)];
  let k;
  let position = layout.position;
  let plan;
  if (layout.scale === null) {
    k = Math.min(cw / bw, ch / bh);
    if (position === null) {
      plan = { width: cw, height: ch, scale: k, left: (cw - k * bw) / 2 - k * bl, top: (ch - k * bh) / 2 - k * bt };
    }
  } else {
    k = layout.scale * Math.min(cw / fw, ch / fh);
    position ??= [0.5, 0.5];
  }
  plan ??= {
    width: cw, height: ch, scale: k,
    left: position[0] * (cw - k * fw) - k * fl,
    top: position[1] * (ch - k * fh) - k * ft,
  };
  return capped(plan, width * height);
}

// layout._capped: a canvas beyond 50 MP (and beyond the photo's own size) is scaled down.
function capped(plan, photoPixels) {
  const limit = Math.max(CANVAS_PIXEL_LIMIT, photoPixels);
  const pixels = plan.width * plan.height;
  if (pixels <= limit) return plan;
  let factor = Math.sqrt(limit / pixels);
  const width = Math.max(1, Math.floor(plan.width * factor));
  const height = Math.max(1, Math.floor(plan.height * factor));
  factor = Math.min(width / plan.width, height / plan.height);
  return { width, height, scale: plan.scale * factor, left: plan.left * factor, top: plan.top * factor };
}

// Plan.photo_rect: the whole photo on the canvas in whole pixels (left, top, right, bottom).
export function photoRect(plan, width, height) {
  return [
    halfUp(plan.left), halfUp(plan.top),
    halfUp(plan.left + plan.scale * width), halfUp(plan.top + plan.scale * height),
  ];
}

// Same rule as compose.subject_box: grow by margin × the box's longer side, clip to the image.
export function subjectBox(box, marginPercent, width, height) {
  const [left, top, right, bottom] = box;
  const grow = Math.round((marginPercent / 100) * Math.max(right - left, bottom - top));
  return [
    Math.max(0, left - grow),
    Math.max(0, top - grow),
    Math.min(width, right + grow),
    Math.min(height, bottom + grow),
  ];
}

export function canvasOf(width, height) {
  const canvas = document.createElement("canvas");
  canvas.width = width;
  canvas.height = height;
  return canvas;
}

function sizeOf(source) {
  return [source.naturalWidth || source.width, source.naturalHeight || source.height];
}

// compose.cover_fit: the centre of the picture with the photo's shape (the same whole-pixel
// region the server takes, for the photo's full size), scaled to cover the canvas.
function drawCover(ctx, img, width, height, full) {
  const [iw, ih] = sizeOf(img);
  let region;
  if (iw * full.height > full.width * ih) {
    const w = Math.max(1, Math.round((ih * full.width) / full.height));
    region = [Math.floor((iw - w) / 2), 0, w, ih];
  } else {
    const h = Math.max(1, Math.round((iw * full.height) / full.width));
    region = [0, Math.floor((ih - h) / 2), iw, h];
  }
  ctx.imageSmoothingQuality = "high";
  ctx.drawImage(img, ...region, 0, 0, width, height);
}

function pixelsOf(source, width, height) {
  const ctx = canvasOf(width, height).getContext("2d", { willReadFrequently: true });
  ctx.drawImage(source, 0, 0, width, height);
  return ctx.getImageData(0, 0, width, height);
}

export class Preview extends EventTarget {
  // full: the photo's real size {width, height}; subjectBox: the result's box in it.
  constructor({ compare, after, before, full, subjectBox: box, original, cutout }) {
    super();
    Object.assign(this, { compare, after, before, full, box });
    this.original = original;
    [this.width, this.height] = sizeOf(cutout);
    this.scale = this.width / full.width;
    // What to show; callers change these and call redraw().
    this.background = { kind: "transparent", color: "#ffffff", photo: null, strength: 50 };
    this.crop = { enabled: false, margin: 5 };
    // Canvas, subject size and place (see planLayout), and the drop shadow (shadow.py).
    this.layout = { canvas: "original", canvasWidth: 0, canvasHeight: 0, scale: null, position: null };
    this.shadow = { enabled: false, direction: 90, distance: 2, softness: 3, opacity: 50 };
    this.output = "cutout";
    this.setCutout(cutout, { redraw: false });
  }

  // Replace the cut-out (an image, bitmap or canvas of the preview's size) and redraw.
  // keepBlur: leave the blurred background as it is (it is an average over the whole photo,
  // too slow to work out again on every frame of a brush stroke; the stroke's end does it).
  setCutout(source, { redraw = true, keepBlur = false } = {}) {
    this.cutout = source;
    this.cutoutPixels = null;
    if (!keepBlur) this.blurCache = null;
    this.maskCanvas = null;
    this.silhouetteCanvas = null;
    if (redraw) this.redraw();
  }

  getCutoutPixels() {
    this.cutoutPixels ??= pixelsOf(this.cutout, this.width, this.height);
    return this.cutoutPixels;
  }

  // Where the photo lands on the download's canvas, at full resolution (see planLayout).
  // Worked out once per change of the layout, crop or subject box: the redraw, the size
  // hint and the overlay's every pointer move all read it.
  plan() {
    const { width, height } = this.full;
    const cropped = this.crop.enabled && this.output !== "none" && this.box?.length === 4;
    const layout = { ...this.layout, cropMargin: cropped ? this.crop.margin : null };
    const key = JSON.stringify([this.box, layout]);
    if (this.planned?.key !== key) this.planned = { key, plan: planLayout(width, height, this.box, layout) };
    return this.planned.plan;
  }

  // The part of the photo the download spans, in full-resolution photo pixels (left, top,
  // right, bottom; beyond the photo where the canvas pads it): maps the picture on screen
  // back to the photo.
  fullBox() {
    const plan = this.plan();
    const k = plan.scale;
    return [-plan.left / k, -plan.top / k, (plan.width - plan.left) / k, (plan.height - plan.top) / k];
  }

  // The output's size in pixels at full resolution.
  outputSize() {
    const plan = this.plan();
    return [plan.width, plan.height];
  }

  // Pixels of the after canvas per full-resolution photo pixel.
  canvasScale() {
    const plan = this.plan();
    return plan.scale * this.previewScale(plan);
  }

  // Preview pixels per canvas pixel: the cut-out's own scale, held to PREVIEW_MAX_SIDE.
  previewScale(plan) {
    return Math.min(this.scale, PREVIEW_MAX_SIDE / Math.max(plan.width, plan.height));
  }

  blurred(strength) {
    if (this.blurCache?.strength !== strength) {
      // The photo never changes: its pixels are read once, only the cut-out's are read again.
      this.photoPixels ??= pixelsOf(this.original, this.width, this.height);
      const work = blurredBackground(
        this.photoPixels, this.getCutoutPixels(), strength, this.full.width, this.full.height,
      );
      const small = canvasOf(work.width, work.height);
      small.getContext("2d").putImageData(work, 0, 0);
      this.blurCache = { strength, canvas: small };
    }
    return this.blurCache.canvas;
  }

  mask() {
    if (!this.maskCanvas) {
      const pixels = this.getCutoutPixels();
      const mask = new ImageData(this.width, this.height);
      const from = pixels.data;
      const to = mask.data;
      for (let i = 0; i < from.length; i += 4) {
        to[i] = to[i + 1] = to[i + 2] = from[i + 3];
        to[i + 3] = 255;
      }
      this.maskCanvas = canvasOf(this.width, this.height);
      this.maskCanvas.getContext("2d").putImageData(mask, 0, 0);
    }
    return this.maskCanvas;
  }

  // scene.background_layer: a colour fills the canvas, a photo is cover-fitted to it, the
  // blur moves with the photo when it then covers the canvas, else it is cover-fitted too.
  drawBackground(ctx, w, h, plan, rect) {
    const { kind, color, photo, strength } = this.background;
    const canvasSize = { width: plan.width, height: plan.height };
    if (kind === "color") {
      ctx.fillStyle = color;
      ctx.fillRect(0, 0, w, h);
    } else if (kind === "photo" && photo) {
      drawCover(ctx, photo, w, h, canvasSize);
    } else if (kind === "blur") {
      ctx.imageSmoothingQuality = "low"; // bilinear, as the server scales the blur back up
      const full = photoRect(plan, this.full.width, this.full.height);
      if (full[0] <= 0 && full[1] <= 0 && full[2] >= plan.width && full[3] >= plan.height) {
        ctx.drawImage(this.blurred(strength), rect[0], rect[1], rect[2] - rect[0], rect[3] - rect[1]);
      } else {
        drawCover(ctx, this.blurred(strength), w, h, canvasSize);
      }
    }
  }

  // The cut-out's alpha in black, for the shadow.
  silhouette() {
    if (!this.silhouetteCanvas) {
      this.silhouetteCanvas = canvasOf(this.width, this.height);
      const ctx = this.silhouetteCanvas.getContext("2d");
      ctx.drawImage(this.cutout, 0, 0, this.width, this.height);
      ctx.globalCompositeOperation = "source-in";
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, this.width, this.height);
    }
    return this.silhouetteCanvas;
  }

  // shadow.shadow_alpha: the silhouette moved by distance × the subject's longer side on
  // the canvas, blurred with sigma softness × that side, at the shadow's opacity.
  drawShadow(ctx, plan, s, rect) {
    const { direction, distance, softness, opacity } = this.shadow;
    if (!this.box || this.box.length !== 4 || opacity <= 0) return;
    const [l, t, r, b] = this.box;
    const size = Math.max(halfUp(plan.scale * r) - halfUp(plan.scale * l), halfUp(plan.scale * b) - halfUp(plan.scale * t));
    const reach = (distance / 100) * size * s;
    const angle = (direction * Math.PI) / 180;
    const sigma = (softness / 100) * size * s;
    ctx.save();
    ctx.filter = sigma > 0.01 ? `blur(${sigma}px)` : "none";
    ctx.globalAlpha = opacity / 100;
    ctx.drawImage(
      this.silhouette(),
      rect[0] + reach * Math.cos(angle), rect[1] + reach * Math.sin(angle),
      rect[2] - rect[0], rect[3] - rect[1],
    );
    ctx.restore();
  }

  // Draw what the download would be into the after canvas (and the original, laid out the
  // same way, into the before canvas).
  redraw() {
    const plan = this.plan();
    const s = this.previewScale(plan);
    const w = Math.max(1, Math.round(plan.width * s));
    const h = Math.max(1, Math.round(plan.height * s));
    const toPreview = (v) => Math.round(v * s);
    const rect = photoRect(plan, this.full.width, this.full.height).map(toPreview);
    let [x, y, rw, rh] = [rect[0], rect[1], rect[2] - rect[0], rect[3] - rect[1]];
    // At the cut-out's own scale (no canvas scaling), draw it pixel for pixel.
    if (Math.abs(plan.scale * s - this.scale) < 1e-9) [rw, rh] = [this.width, this.height];
    // Drawn straight into the after canvas: it is the download's size already, so no copy.
    this.after.width = w; // also clears it
    this.after.height = h;
    const ctx = this.after.getContext("2d");
    if (this.output === "mask") {
      ctx.fillStyle = "#000";
      ctx.fillRect(0, 0, w, h);
      ctx.imageSmoothingQuality = rw < this.width ? "high" : "low";
      ctx.drawImage(this.mask(), x, y, rw, rh);
    } else {
      this.drawBackground(ctx, w, h, plan, rect);
      if (this.shadow.enabled) this.drawShadow(ctx, plan, s, rect);
      // Bilinear when enlarging, as the server's; a better filter when shrinking, nearer
      // the server's area averaging.
      ctx.imageSmoothingQuality = rw < this.width ? "high" : "low";
      ctx.drawImage(this.cutout, x, y, rw, rh);
    }
    // The photo never changes: the before picture only needs drawing when the layout does.
    const layout = `${w} ${h} ${rect}`;
    if (this.beforeLayout !== layout) {
      this.before.width = w;
      this.before.height = h;
      this.before.getContext("2d").drawImage(this.original, x, y, rw, rh);
      this.beforeLayout = layout;
    }
    this.compare.style.aspectRatio = `${w} / ${h}`;
    this.compare.parentElement.style.setProperty("--ratio", String(w / h));
    const opaque = this.output === "mask" || this.background.kind !== "transparent";
    this.compare.classList.toggle("is-opaque", opaque);
    this.renders = (this.renders || 0) + 1;
    this.after.dataset.renders = String(this.renders);
    this.dispatchEvent(new Event("render"));
  }
}

// Load the images and make the page's Preview (once).
export async function createPreview({ compare, after, before, full, result }) {
  const [original, cutout] = await Promise.all([loadImage(result.original), loadImage(result.cutout)]);
  const preview = new Preview({ compare, after, before, full, subjectBox: result.subject_box, original, cutout });
  preview.redraw();
  return preview;
}
