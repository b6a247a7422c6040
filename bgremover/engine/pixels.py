"""From a decoded Pillow image to the numpy arrays decode_image returns, lean in memory.

Pillow holds a decoded image at 4 bytes a pixel (RGB too), and a whole-image convert() or
tobytes() would put one or two more full copies beside it. Here the pixels leave Pillow a band
of rows at a time, converted only when the mode differs, straight into our arrays; Pillow's
image is then closed, and the EXIF turn is made on our arrays with one new array beside the
old. Pillow's conversions work pixel by pixel, so bands give exactly what a whole convert()
gives. The peak is Pillow's copy plus ours: 7 bytes a pixel for RGB, 8 with alpha.
"""

from __future__ import annotations

from collections.abc import Iterator

import cv2
import numpy as np
from PIL import Image

from bgremover.engine.errors import ImageDecodeError

WIDE_GREY_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})
BAND_BYTES = 1 << 20  # of Pillow's pixels per band: a few MB of temporaries in all


def take(image: Image.Image, orientation: int | None) -> tuple[np.ndarray, np.ndarray | None]:
    """H×W×3 uint8 RGB and, when the image has transparency, H×W uint8 alpha, turned for the
    EXIF ``orientation`` (2-8; None: as stored). C-contiguous, writable, ours alone. The
    image is closed on the way: its pixels are gone before the turn copies ours."""
    colour, alpha = _arrays(image)
    image.close()
    colour = oriented(colour, orientation)
    if alpha is not None:
        alpha = oriented(alpha, orientation)
    if colour.ndim == 2:
        colour = np.repeat(colour[:, :, None], 3, axis=2)
    return colour, alpha


def _arrays(image: Image.Image) -> tuple[np.ndarray, np.ndarray | None]:
    """H×W×3 RGB (H×W grey for the wide grey modes) and the H×W alpha, as stored."""
    has_alpha = image.has_transparency_data
    if image.mode in WIDE_GREY_MODES or image.mode == "F":
        return _wide_grey_to_8bit(image, has_alpha)
    mode = "RGBA" if has_alpha else "RGB"
    width, height = image.size
    rgb = np.empty((height, width, 3), np.uint8)
    alpha = np.empty((height, width), np.uint8) if has_alpha else None
    for rows, band in _bands(image):
        if band.mode != mode:
            try:
                band = band.convert(mode)
            except (ValueError, OSError) as exc:
                raise ImageDecodeError(f"Unsupported pixel format ({image.mode})") from exc
        pixels = np.asarray(band)
        if alpha is None:
            rgb[rows] = pixels
        else:
            rgb[rows] = pixels[:, :, :3]
            alpha[rows] = pixels[:, :, 3]
    return rgb, alpha


def _bands(image: Image.Image) -> Iterator[tuple[slice, Image.Image]]:
    """(rows, a copy of those rows) from top to bottom, each about BAND_BYTES of pixels."""
    width, height = image.size
    step = max(1, BAND_BYTES // max(1, 4 * width))
    for top in range(0, height, step):
        bottom = min(top + step, height)
        yield slice(top, bottom), image.crop((0, top, width, bottom))


def _wide_grey_to_8bit(image: Image.Image, has_alpha: bool) -> tuple[np.ndarray, np.ndarray | None]:
    """16-bit and 32-bit integer greys keep their top byte (65535 → 255, 256 → 1): Pillow's
    own convert("L") clips them to 255 instead. "I" is read as 16-bit, as 16-bit PNG/TIFF
    usually arrive. Floats in 0..1 are scaled to 0..255; other float ranges are clipped."""
    width, height = image.size
    grey = np.empty((height, width), np.uint8)
    alpha = np.empty((height, width), np.uint8) if has_alpha else None
    transparent_value = image.info.get("transparency")
    scale = (
        image.mode == "F"
        and height * width > 0
        and all(_within_unit_range(_finite_floats(band)) for _, band in _bands(image))
    )
    for rows, band in _bands(image):
        if image.mode == "F":
            values = _finite_floats(band)
            if scale:
                values = values * 255.0
            grey[rows] = np.clip(np.rint(values), 0, 255).astype(np.uint8)
        else:
            values = np.asarray(band)
            grey[rows] = (np.clip(values.astype(np.int64), 0, 65_535) >> 8).astype(np.uint8)
        if alpha is not None:
            alpha[rows] = np.where(values == transparent_value, 0, 255).astype(np.uint8)
    return grey, alpha


def _finite_floats(band: Image.Image) -> np.ndarray:
    return np.nan_to_num(np.asarray(band).astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)


def _within_unit_range(values: np.ndarray) -> bool:
    return bool(values.min() >= 0.0 and values.max() <= 1.0)


def oriented(pixels: np.ndarray, orientation: int | None) -> np.ndarray:
    """``pixels`` (H×W or H×W×C) turned or mirrored for the EXIF orientation (2-8) as Pillow's
    transpose would, with one new array beside the old; as they are for None or 1."""
    if orientation == 2:
        return cv2.flip(pixels, 1)
    if orientation == 3:
        return cv2.rotate(pixels, cv2.ROTATE_180)
    if orientation == 4:
        return cv2.flip(pixels, 0)
    if orientation == 5:
        return cv2.transpose(pixels)
    if orientation == 6:
        return cv2.rotate(pixels, cv2.ROTATE_90_CLOCKWISE)
    if orientation == 7:
        return np.ascontiguousarray(np.swapaxes(pixels[::-1, ::-1], 0, 1))
    if orientation == 8:
        return cv2.rotate(pixels, cv2.ROTATE_90_COUNTERCLOCKWISE)
    return pixels
