"""Stage "matting": soft alpha and clean colours along the subject's edge.

Only the uncertain band around the mask's edge is solved, and always at a bounded working
resolution, so a 24-megapixel photo costs about what a 1-megapixel one does: closed-form
matting (Levin et al. 2008, via pymatting) fills the band; the matte is carried back to full
resolution with guided upsampling, which keeps strands the photo shows. Foreground colours
are then estimated (pymatting's multilevel method) so hair and fur lose the old background's
tint; full-resolution detail is added back on top of the working-size estimate.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from pymatting import estimate_alpha_cf, estimate_foreground_ml

from bgremover.engine.refine import apply_coefficients, guided_coefficients, working_size

# Working resolution (longer side) for the matting solve.
MATTING_SIDE = 1024
# Half-width of the unknown band, as a share of the working image's longer side.
BAND_SHARE = 0.008


@dataclass
class Matte:
    alpha: np.ndarray       # H×W float32 in 0..1 at full resolution
    foreground: np.ndarray  # H×W×3 uint8 at full resolution, background tint removed


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def make_trimap(prob: np.ndarray, radius: int) -> np.ndarray:
    """uint8 trimap (0 background, 128 unknown, 255 foreground): a band of ``radius`` pixels
    each side of the map's 0.5 contour. (Also marking the map's merely uncertain areas as
    unknown let the solver turn the network's semantic mistakes into hard wrong regions:
    on the development matting split SAD rose from 25.0 to 30.0.)"""
    solid = (prob >= 0.5).astype(np.uint8)
    kernel = _disk(max(1, radius))
    trimap = np.full(prob.shape, 128, dtype=np.uint8)
    trimap[cv2.erode(solid, kernel).astype(bool)] = 255
    trimap[~cv2.dilate(solid, kernel).astype(bool)] = 0
    return trimap


def band_radius(shape: tuple[int, int]) -> int:
    return max(2, round(BAND_SHARE * max(shape)))


def worth_matting(prob: np.ndarray) -> bool:
    """For matting="auto": there is a subject and an edge band to refine."""
    solid = prob >= 0.5
    return bool(solid.any() and not solid.all())


def estimate_matte(rgb: np.ndarray, prob: np.ndarray, *,
                   side: int = MATTING_SIDE) -> Matte:
    """Alpha and decontaminated foreground for the full-resolution photo ``rgb`` (H×W×3
    uint8) given the refined full-resolution probability map ``prob`` (H×W float32)."""
    h, w = prob.shape
    size = working_size((h, w), side)
    small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    small_prob = cv2.resize(prob, size, interpolation=cv2.INTER_AREA)
    trimap = make_trimap(small_prob, band_radius(small_prob.shape))
    unknown = trimap == 128
    image = small_rgb.astype(np.float64) / 255.0
    small_alpha = (trimap == 255).astype(np.float64)
    if unknown.any():
        # Solve inside the band's bounding box only (plus the 1-pixel Laplacian window).
        ys, xs = np.nonzero(unknown)
        top, bottom = max(0, ys.min() - 2), min(size[1], ys.max() + 3)
        left, right = max(0, xs.min() - 2), min(size[0], xs.max() + 3)
        crop_trimap = trimap[top:bottom, left:right].astype(np.float64) / 255.0
        small_alpha[top:bottom, left:right] = estimate_alpha_cf(
            image[top:bottom, left:right], crop_trimap,
            laplacian_kwargs={"epsilon": 1e-6}, cg_kwargs={"maxiter": 500})
    small_fg = estimate_foreground_ml(image, small_alpha, n_big_iterations=1)

    if (w, h) == size:
        foreground = rgb.copy()
        foreground[unknown] = np.clip(small_fg[unknown] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        return Matte(alpha=small_alpha.astype(np.float32), foreground=foreground)
    return _to_full_resolution(rgb, prob, small_rgb, trimap, small_alpha, small_fg)


def _to_full_resolution(rgb: np.ndarray, prob: np.ndarray, small_rgb: np.ndarray,
                        trimap: np.ndarray, small_alpha: np.ndarray,
                        small_fg: np.ndarray) -> Matte:
    h, w = prob.shape
    guide = small_rgb.astype(np.float32) / 255.0
    a, b = guided_coefficients(guide, small_alpha.astype(np.float32), radius=2, eps=1e-5)
    fine_alpha = apply_coefficients(a, b, rgb)
    band = cv2.resize(trimap, (w, h), interpolation=cv2.INTER_NEAREST)
    alpha = np.where(band == 128, fine_alpha, (band == 255).astype(np.float32))

    # Foreground: the working-size estimate plus the photo's own full-resolution detail, only
    # in the band (elsewhere the photo's colours are the subject's colours).
    foreground = rgb.copy()
    rows = np.nonzero((band == 128).any(axis=1))[0]
    if rows.size:
        top, bottom = rows.min(), rows.max() + 1
        detail = rgb[top:bottom].astype(np.float32)
        detail -= cv2.resize(small_rgb, (w, h), interpolation=cv2.INTER_LINEAR)[top:bottom]
        estimate = cv2.resize(small_fg.astype(np.float32) * 255.0, (w, h),
                              interpolation=cv2.INTER_LINEAR)[top:bottom]
        estimate += detail
        in_band = band[top:bottom] == 128
        foreground[top:bottom][in_band] = np.clip(estimate[in_band] + 0.5, 0, 255).astype(np.uint8)
    return Matte(alpha=alpha, foreground=foreground)
