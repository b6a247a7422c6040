// The blurred-original background, computed the way the server computes it
// (bgremover/engine/compose.py, blurred_background), so the preview shows what downloads:
//
//   background = blur(photo·w) / blur(w)   with w = 1 − α   (normalised convolution)
//
// each background pixel is an average of *background* pixels only, so the subject's colours
// do not bleed into a halo around it. Where a neighbourhood is almost all subject (less than
// MIN_BACKGROUND_SHARE of background weight) it fades to the plain blur of the photo.
//
// Like the server, the blur runs on a copy scaled so its sigma is about WORKING_SIGMA pixels
// (area averaging down, a Gaussian with reflected borders, bilinear back up by the caller).

const BLUR_SIGMA_AT_MAX = 0.04;
const WORKING_SIGMA = 4.0;
const MAX_WORKING_SCALE = 0.5;
const MIN_BACKGROUND_SHARE = 0.02;

// Same rule as compose.blur_sigma: sigma at strength 100 is 4 % of the longer side.
export function blurSigma(strength, width, height) {
  return Math.max(1, (strength / 100) * BLUR_SIGMA_AT_MAX * Math.max(width, height));
}

// Source weights of an area-average resize of n samples to m (cv2.INTER_AREA shrinking).
function areaWeights(n, m) {
  const scale = n / m;
  const rows = [];
  for (let d = 0; d < m; d++) {
    const start = d * scale;
    const end = Math.min(n, start + scale);
    const taps = [];
    for (let s = Math.floor(start); s < Math.ceil(end); s++) {
      const w = Math.min(end, s + 1) - Math.max(start, s);
      if (w > 1e-9) taps.push([s, w / scale]);
    }
    rows.push(taps);
  }
  return rows;
}

// Resize `channels` planar Float32 planes of width×height to w×h by area averaging.
function shrink(planes, width, height, w, h) {
  if (w === width && h === height) return planes;
  const across = areaWeights(width, w);
  const down = areaWeights(height, h);
  return planes.map((plane) => {
    const mid = new Float32Array(w * height);
    for (let y = 0; y < height; y++) {
      const row = y * width;
      for (let x = 0; x < w; x++) {
        let sum = 0;
        for (const [s, weight] of across[x]) sum += plane[row + s] * weight;
        mid[y * w + x] = sum;
      }
    }
    const out = new Float32Array(w * h);
    for (let y = 0; y < h; y++) {
      for (const [s, weight] of down[y]) {
        const src = s * w;
        const dst = y * w;
        for (let x = 0; x < w; x++) out[dst + x] += mid[src + x] * weight;
      }
    }
    return out;
  });
}

// cv2.getGaussianKernel for ksize = 2·round(4σ)+1 (OpenCV's size for 16-bit images).
function gaussianKernel(sigma) {
  const radius = Math.max(1, Math.round(sigma * 4));
  const kernel = new Float32Array(2 * radius + 1);
  let sum = 0;
  for (let i = -radius; i <= radius; i++) {
    const value = Math.exp(-(i * i) / (2 * sigma * sigma));
    kernel[i + radius] = value;
    sum += value;
  }
  return kernel.map((value) => value / sum);
}

// BORDER_REFLECT: fedcba|abcdefgh|hgfedcb
function reflect(i, n) {
  if (n === 1) return 0;
  for (;;) {
    if (i < 0) i = -i - 1;
    else if (i >= n) i = 2 * n - i - 1;
    else return i;
  }
}

function gaussian(plane, w, h, sigma) {
  const kernel = gaussianKernel(sigma);
  const radius = (kernel.length - 1) / 2;
  const mid = new Float32Array(w * h);
  const xs = Array.from({ length: w + 2 * radius }, (_, i) => reflect(i - radius, w));
  for (let y = 0; y < h; y++) {
    const row = y * w;
    for (let x = 0; x < w; x++) {
      let sum = 0;
      for (let k = 0; k < kernel.length; k++) sum += plane[row + xs[x + k]] * kernel[k];
      mid[row + x] = sum;
    }
  }
  const out = new Float32Array(w * h);
  for (let y = 0; y < h; y++) {
    const dst = y * w;
    for (let k = 0; k < kernel.length; k++) {
      const src = reflect(y + k - radius, h) * w;
      const weight = kernel[k];
      for (let x = 0; x < w; x++) out[dst + x] += mid[src + x] * weight;
    }
  }
  return out;
}

// The blurred background at working size, as an ImageData the caller scales up bilinearly.
// `photo` and `cutout` are ImageData of the preview (same size); fullWidth×fullHeight is the
// photo's real size, which the blur's sigma and working size are defined on.
export function blurredBackground(photo, cutout, strength, fullWidth, fullHeight) {
  const { width, height } = photo;
  const sigma = blurSigma(strength, fullWidth, fullHeight);
  const serverScale = Math.min(MAX_WORKING_SCALE, WORKING_SIGMA / sigma);
  // The server's working size, unless the preview itself is smaller.
  let w = Math.max(1, Math.round(fullWidth * serverScale));
  let h = Math.max(1, Math.round(fullHeight * serverScale));
  if (w > width || h > height) [w, h] = [width, height];
  const workSigma = (sigma * w) / fullWidth;

  const count = width * height;
  const planes = Array.from({ length: 7 }, () => new Float32Array(count));
  const [nr, ng, nb, den, pr, pg, pb] = planes;
  const p = photo.data;
  const a = cutout.data;
  for (let i = 0, j = 0; i < count; i++, j += 4) {
    const weight = 1 - a[j + 3] / 255;
    nr[i] = p[j] * weight;
    ng[i] = p[j + 1] * weight;
    nb[i] = p[j + 2] * weight;
    den[i] = weight;
    pr[i] = p[j];
    pg[i] = p[j + 1];
    pb[i] = p[j + 2];
  }
  const blurred = shrink(planes, width, height, w, h).map((plane) => gaussian(plane, w, h, workSigma));
  const [bnr, bng, bnb, bden, bpr, bpg, bpb] = blurred;
  const out = new ImageData(w, h);
  const o = out.data;
  for (let i = 0, j = 0; i < w * h; i++, j += 4) {
    const d = bden[i];
    const norm = 1 / Math.max(d, 1 / 65025);
    const trust = Math.min(d / MIN_BACKGROUND_SHARE, 1);
    o[j] = bnr[i] * norm * trust + bpr[i] * (1 - trust);
    o[j + 1] = bng[i] * norm * trust + bpg[i] * (1 - trust);
    o[j + 2] = bnb[i] * norm * trust + bpb[i] * (1 - trust);
    o[j + 3] = 255;
  }
  return out;
}
