// The editor's preview: the cut-out composited over the chosen background in a canvas, the
// way the server renders the download (bgremover/engine/compose.py, pipeline.render):
// same background fitting, same blur (blur.js), same crop box, the alpha mask as a mask.
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
    this.output = "cutout";
    this.composite = canvasOf(this.width, this.height);
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
    if (redraw) this.redraw();
  }

  getCutoutPixels() {
    this.cutoutPixels ??= pixelsOf(this.cutout, this.width, this.height);
    return this.cutoutPixels;
  }

  // The crop box at full resolution (left, top, right, bottom): what the download will be.
  fullBox() {
    const { width, height } = this.full;
    if (!this.crop.enabled || this.output === "none" || !this.box || this.box.length !== 4) {
      return [0, 0, width, height];
    }
    return subjectBox(this.box, this.crop.margin, width, height);
  }

  // The output's size in pixels at full resolution.
  outputSize() {
    const [left, top, right, bottom] = this.fullBox();
    return [right - left, bottom - top];
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

  drawBackground(ctx) {
    const { kind, color, photo, strength } = this.background;
    if (kind === "color") {
      ctx.fillStyle = color;
      ctx.fillRect(0, 0, this.width, this.height);
    } else if (kind === "photo" && photo) {
      drawCover(ctx, photo, this.width, this.height, this.full);
    } else if (kind === "blur") {
      ctx.imageSmoothingQuality = "low"; // bilinear, as the server scales the blur back up
      ctx.drawImage(this.blurred(strength), 0, 0, this.width, this.height);
    }
  }

  // Draw what the download would be, cropped, into the after canvas (and the original,
  // cropped the same way, into the before canvas).
  redraw() {
    const ctx = this.composite.getContext("2d");
    ctx.clearRect(0, 0, this.width, this.height);
    if (this.output === "mask") {
      ctx.drawImage(this.mask(), 0, 0);
    } else {
      this.drawBackground(ctx);
      ctx.drawImage(this.cutout, 0, 0, this.width, this.height);
    }
    const [left, top, right, bottom] = this.fullBox().map((value) => Math.round(value * this.scale));
    const w = Math.max(1, right - left);
    const h = Math.max(1, bottom - top);
    const copy = (canvas, source) => {
      canvas.width = w;
      canvas.height = h;
      canvas.getContext("2d").drawImage(source, left, top, w, h, 0, 0, w, h);
    };
    copy(this.after, this.composite);
    // The photo never changes: the before picture only needs drawing when the crop does.
    const crop = `${left} ${top} ${w} ${h}`;
    if (this.beforeCrop !== crop) {
      copy(this.before, this.original);
      this.beforeCrop = crop;
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
