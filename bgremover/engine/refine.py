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
PINHOLE_SHARE = 0.0005
# Haze further than this (as a share of the map's side) from every kept component is dropped.
HAZE_MARGIN = 0.1
# Bounds on a map's own subject/background split (otsu_midpoint): a map with no clear subject
# has no meaningful split, and its faint haze must not become the subject.
MIDPOINT_RANGE = (0.25, 0.75)


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


def otsu_midpoint(prob: np.ndarray) -> float:
    """The level (0..1) that best splits the map's values into subject and background
    (Otsu 1979), clamped to MIDPOINT_RANGE.

    The network's maps are not calibrated alike: on an uncertain photo the subject sits at
    0.3–0.45 where a clear one sits near 1. Centering the contrast curve on each map's own split
    instead of on 0.5 (development split, SOD: MAE 0.0469 → 0.0459, max F 0.9092 → 0.9125,
    S 0.8988 → 0.9021; matting: SAD 26.9 → 24.9, MSE 36.3 → 34.2; a fixed midpoint of 0.45 or
    0.48 gained almost nothing, so it is the per-photo choice that helps)."""
    levels = np.clip(prob * 255.0 + 0.5, 0, 255).astype(np.uint8)
    level, _ = cv2.threshold(levels, 0, 255, cv2.THRESH_BINARY | cv2.THRESH_OTSU)
    return float(np.clip((level + 0.5) / 255.0, *MIDPOINT_RANGE))


def sharpen(prob: np.ndarray, contrast: float, midpoint: float = 0.5) -> np.ndarray:
    """A logistic contrast curve through (``midpoint``, 0.5) that keeps 0 and 1 fixed: the
    network's soft ramps (a blurred 320-pixel edge) become steeper, values above the midpoint
    rise towards 1 and values below it fall towards 0. Each side of the midpoint is its own
    branch of steepness ``contrast``, so the midpoint lands on exactly 0.5."""
    if contrast <= 0:
        return prob
    out = prob.astype(np.float32, copy=True)
    soft = (out > 0.0) & (out < 1.0)  # the curve keeps 0 and 1: only the edge needs work
    values = out[soft]
    above = values >= midpoint
    values[above] = 0.5 + 0.5 * _branch(values[above] - midpoint, contrast, 1.0 - midpoint)
    values[~above] = 0.5 - 0.5 * _branch(midpoint - values[~above], contrast, midpoint)
    out[soft] = np.clip(values, 0.0, 1.0)
    return out


def _branch(distance: np.ndarray, contrast: float, span: float) -> np.ndarray:
    """0 → 0 and ``span`` → 1 along a logistic of steepness ``contrast``."""
    top = 1.0 / (1.0 + np.exp(-contrast * span)) - 0.5
    return (1.0 / (1.0 + np.exp(-contrast * distance)) - 0.5) / top


def _box(values: np.ndarray, radius: int) -> np.ndarray:
    return cv2.boxFilter(
        values, -1, (2 * radius + 1, 2 * radius + 1), borderType=cv2.BORDER_REFLECT
    )


def guided_coefficients(
    guide: np.ndarray, target: np.ndarray, radius: int, eps: float
) -> tuple[np.ndarray, np.ndarray]:
    """Colour guided filter coefficients (a: H×W×3, b: H×W), already box-averaged, so that
    ``(a * guide).sum(-1) + b`` is the filtered ``target``. ``guide`` is float32 in 0..1."""
    mean_i = _box(guide, radius)
    mean_p = _box(target, radius)
    cov = (_box(guide * target[..., None], radius) - mean_i * mean_p[..., None]).astype(np.float64)

    def var(i: int, j: int) -> np.ndarray:
        value = _box(guide[..., i] * guide[..., j], radius) - mean_i[..., i] * mean_i[..., j]
        return value.astype(np.float64) + (eps if i == j else 0.0)

    # Solve the per-pixel symmetric 3×3 systems with the adjugate: several times faster
    # than a batched np.linalg.solve over hundreds of thousands of tiny matrices.
    s11, s12, s13, s22, s23, s33 = var(0, 0), var(0, 1), var(0, 2), var(1, 1), var(1, 2), var(2, 2)
    c11, c12, c13 = s22 * s33 - s23 * s23, s13 * s23 - s12 * s33, s12 * s23 - s13 * s22
    c22, c23, c33 = s11 * s33 - s13 * s13, s12 * s13 - s11 * s23, s11 * s22 - s12 * s12
    det = s11 * c11 + s12 * c12 + s13 * c13
    v1, v2, v3 = cov[..., 0], cov[..., 1], cov[..., 2]
    a = (
        np.stack(
            [
                c11 * v1 + c12 * v2 + c13 * v3,
                c12 * v1 + c22 * v2 + c23 * v3,
                c13 * v1 + c23 * v2 + c33 * v3,
            ],
            axis=-1,
        )
        / det[..., None]
    )
    a = a.astype(np.float32)
    b = mean_p - (a * mean_i).sum(-1)
    return _box(a, radius), _box(b, radius)


def working_size(shape: tuple[int, int], long_side: int) -> tuple[int, int]:
    """(width, height) with the longer side at most ``long_side``, aspect ratio kept."""
    h, w = shape
    scale = min(1.0, long_side / max(h, w))
    return max(1, round(w * scale)), max(1, round(h * scale))


# Full-resolution work happens tile by tile, and only in tiles that touch an edge: away from
# the subject's outline the map is flat 0 or 1 and a plain upsample is exact enough.
TILE = 256
Tile = tuple[slice, slice]


def edge_tiles(edge: np.ndarray, shape: tuple[int, int], tile: int = TILE) -> list[Tile]:
    """The ``tile``-sized blocks of a full-resolution image of ``shape`` that overlap (or
    neighbour) where the low-resolution boolean map ``edge`` is set."""
    h, w = shape
    grid_h, grid_w = -(-h // tile), -(-w // tile)
    grid = cv2.resize(edge.astype(np.float32), (grid_w, grid_h), interpolation=cv2.INTER_AREA) > 0
    grid = cv2.dilate(grid.astype(np.uint8), np.ones((3, 3), np.uint8)).astype(bool)
    return [
        (slice(y * tile, min(h, (y + 1) * tile)), slice(x * tile, min(w, (x + 1) * tile)))
        for y, x in zip(*np.nonzero(grid), strict=True)
    ]


def sample_tile(low: np.ndarray, shape: tuple[int, int], tile: Tile) -> np.ndarray:
    """``low`` (a map of any size over the whole image) bilinearly resampled onto the
    full-resolution pixels of ``tile`` in an image of ``shape``, pixel centres aligned."""
    rows, cols = tile
    ys = (np.arange(rows.start, rows.stop, dtype=np.float32) + 0.5) * (low.shape[0] / shape[0])
    xs = (np.arange(cols.start, cols.stop, dtype=np.float32) + 0.5) * (low.shape[1] / shape[1])
    map_x = np.tile(xs - 0.5, (ys.size, 1))
    map_y = np.tile(ys[:, None] - 0.5, (1, xs.size))
    return cv2.remap(low, map_x, map_y, cv2.INTER_LINEAR, borderMode=cv2.BORDER_REPLICATE)


def apply_coefficients(a: np.ndarray, b: np.ndarray, rgb: np.ndarray, tile: Tile) -> np.ndarray:
    """``a · photo + b`` on one full-resolution tile of the photo, clipped to 0..1."""
    photo = rgb[tile].astype(np.float32)
    photo *= 1.0 / 255.0
    value = np.einsum("ijc,ijc->ij", sample_tile(a, rgb.shape[:2], tile), photo)
    value += sample_tile(b, rgb.shape[:2], tile)
    return np.clip(value, 0.0, 1.0, out=value)


def upsample_guided(
    prob: np.ndarray, rgb: np.ndarray, *, guide_size: int = 640, radius: int = 2, eps: float = 1e-4
) -> np.ndarray:
    """The low-resolution map ``prob`` at ``rgb``'s full resolution, edge-aware. (A radius of
    2 guide pixels follows the photo's edges more closely than 4: development split, SOD MAE
    0.0453 → 0.0446 with max F and S up too; matting unchanged within 0.1 SAD; 8 was worse.)"""
    h, w = rgb.shape[:2]
    size = working_size((h, w), guide_size)
    guide = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA).astype(np.float32) / 255.0
    target = cv2.resize(prob, size, interpolation=cv2.INTER_LINEAR)
    a, b = guided_coefficients(guide, target, radius, eps)
    out = np.clip(cv2.resize(target, (w, h), interpolation=cv2.INTER_LINEAR), 0.0, 1.0)
    for tile in edge_tiles((target > 0.01) & (target < 0.99), (h, w)):
        out[tile] = apply_coefficients(a, b, rgb, tile)
    return out
