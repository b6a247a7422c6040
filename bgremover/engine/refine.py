"""Stage "refining": from the network's 320×320 map to a clean full-resolution mask.

Clean-up happens at network resolution (cheap, and specks or pin-holes smaller than a
network pixel do not exist there); the map is then brought to full resolution with a fast
guided filter (He & Sun 2015): linear coefficients fitted between the photo and the map at a
bounded working size, upsampled, and applied to the full-resolution photo, so edges follow the
photo's own edges instead of a blurred 320-pixel grid.
"""

from __future__ import annotations

import cv2
import numpy as np

# A component smaller than this share of the largest one is a speck, unless the network is
# confident about it (a real second subject far away is usually small but certain).
SPECK_SHARE = 0.01
CONFIDENT = 0.9
# Background holes smaller than this share of the subject's area are pin-holes to fill.
PINHOLE_SHARE = 0.0002
# Haze further than this (as a share of the map's side) from every kept component is dropped.
HAZE_MARGIN = 0.1


def clean_mask(prob: np.ndarray) -> np.ndarray:
    """``prob`` (H×W float32 in 0..1) without small disconnected specks, faint haze far from
    the subject, and pin-holes; real second subjects and real holes are kept."""
    solid = (prob >= 0.5).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    if count <= 1:
        return prob
    areas = stats[1:, cv2.CC_STAT_AREA]
    largest = int(areas.max())
    peaks = np.zeros(count, dtype=np.float32)
    np.maximum.at(peaks, labels.ravel(), prob.ravel())
    keep = np.zeros(count, dtype=bool)
    keep[1:] = (areas >= SPECK_SHARE * largest) | (peaks[1:] >= CONFIDENT) & (areas >= 4)
    kept = keep[labels].astype(np.uint8)
    margin = max(1, round(HAZE_MARGIN * max(prob.shape)))
    near = cv2.dilate(kept, cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * margin + 1,) * 2))
    cleaned = np.where(near.astype(bool), prob, 0.0).astype(np.float32)
    # Drop what remains of removed specks (their soft rims near kept parts stay smooth).
    cleaned[(solid == 1) & ~kept.astype(bool)] = 0.0

    holes = (kept == 0).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(holes, connectivity=4)
    h, w = prob.shape
    subject_area = int(kept.sum())
    for index in range(1, count):
        x, y, bw, bh, area = stats[index]
        touches_border = x == 0 or y == 0 or x + bw == w or y + bh == h
        if not touches_border and area < PINHOLE_SHARE * subject_area:
            cleaned[labels == index] = 1.0
    return cleaned


def sharpen(prob: np.ndarray, contrast: float) -> np.ndarray:
    """A logistic contrast curve through 0.5 that keeps 0 and 1 fixed: the network's soft
    ramps (a blurred 320-pixel edge) become steeper without moving the edge."""
    if contrast <= 0:
        return prob
    lo = 1.0 / (1.0 + np.exp(contrast * 0.5))
    curved = 1.0 / (1.0 + np.exp(-contrast * (prob - 0.5)))
    return np.clip((curved - lo) / (1.0 - 2.0 * lo), 0.0, 1.0).astype(np.float32)


def _box(values: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(values, -1, (2 * radius + 1, 2 * radius + 1),
                         borderType=cv2.BORDER_REFLECT)


def guided_coefficients(guide: np.ndarray, target: np.ndarray, radius: int,
                        eps: float) -> tuple[np.ndarray, np.ndarray]:
    """Colour guided filter coefficients (a: H×W×3, b: H×W), already box-averaged, so that
    ``(a * guide).sum(-1) + b`` is the filtered ``target``. ``guide`` is float32 in 0..1."""
    mean_i = _box(guide, radius)
    mean_p = _box(target, radius)
    cov_ip = _box(guide * target[..., None], radius) - mean_i * mean_p[..., None]
    sigma = np.empty(guide.shape[:2] + (3, 3), dtype=np.float32)
    for i in range(3):
        for j in range(i, 3):
            value = _box(guide[..., i] * guide[..., j], radius) - mean_i[..., i] * mean_i[..., j]
            sigma[..., i, j] = value
            sigma[..., j, i] = value
    sigma += eps * np.eye(3, dtype=np.float32)
    a = np.linalg.solve(sigma, cov_ip[..., None])[..., 0]
    b = mean_p - (a * mean_i).sum(-1)
    return _box(a, radius), _box(b, radius)


def working_size(shape: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(width, height) with the longer side at most ``long_side``, aspect ratio kept."""
    h, w = shape
    scale = min(1.0, long_side / max(h, w))
    return max(1, round(w * scale)), max(1, round(h * scale))


def apply_coefficients(a: np.ndarray, b: np.ndarray, rgb: np.ndarray,
                       rows_per_strip: int = 512) -> np.ndarray:
    """``a · photo + b`` at the photo's full resolution, clipped to 0..1, computed in strips
    of rows so a 24-megapixel photo never needs a float copy of itself."""
    h, w = rgb.shape[:2]
    out = np.empty((h, w), dtype=np.float32)
    scale_y = a.shape[0] / h
    for top in range(0, h, rows_per_strip):
        bottom = min(h, top + rows_per_strip)
        # Map this strip's rows onto the coefficient grid (pixel centres aligned).
        ys = (np.arange(top, bottom, dtype=np.float32) + 0.5) * scale_y - 0.5
        xs = (np.arange(w, dtype=np.float32) + 0.5) * (a.shape[1] / w) - 0.5
        map_x = np.tile(xs, (bottom - top, 1))
        map_y = np.tile(ys[:, None], (1, w))
        strip_a = cv2.remap(a, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        strip_b = cv2.remap(b, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)
        photo = rgb[top:bottom].astype(np.float32)
        photo *= 1.0 / 255.0
        value = np.einsum("ijc,ijc->ij", strip_a, photo) + strip_b
        np.clip(value, 0.0, 1.0, out=out[top:bottom])
    return out


def upsample_guided(prob: np.ndarray, rgb: np.ndarray, *, guide_size: int = 640,
                    radius: int = 4, eps: float = 1e-4) -> np.ndarray:
    """The low-resolution map ``prob`` at ``rgb``'s full resolution, edge-aware."""
    size = working_size(rgb.shape[:2], guide_size)
    guide = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    target = cv2.resize(prob, size, interpolation=cv2.INTER_LINEAR)
    a, b = guided_coefficients(guide, target, radius, eps)
    return apply_coefficients(a, b, rgb)
