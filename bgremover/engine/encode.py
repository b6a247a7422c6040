"""Stage "encoding": pixels to PNG / WebP / JPEG bytes, and an alpha mask to a greyscale PNG.

Settings come from timings on this project's 2-core machine (shared with other work, so about
±30 %), encoding a 4692×2592 (12.2 MP) RGBA cut-out built from two real photos with soft masks:

PNG   Pillow compress_level 0: 0.9 s, 48.7 MB; 1: 1.5-1.9 s, 22.6 MB; 3: 2.9 s, 21.9 MB;
      6 (its default): 8.3 s, 20.4 MB.
      OpenCV level 1: 1.45 s, 22.6 MB; level 1 with the Up filter only: 0.9 s, 22.0 MB;
      level 2 + Up: 1.1 s, 21.7 MB; level 6: 8.6 s, 20.6 MB.
      -> OpenCV, level 1, Up filter: the fastest, and smaller than Pillow at level 1. OpenCV
      cannot embed an ICC profile, so the iCCP chunk is spliced in here (it is one chunk).
      (With colour zeroed under alpha = 0 the same cut-out takes 0.4 s and 10.2 MB.)
WebP  lossless, method 0: 0.8-1.0 s, 7.1 MB; method 1: 2.8 s, 5.6 MB; method 0 with exact
      (keeps the colour under fully transparent pixels, where nothing shows): 1.8-2.3 s, 14.3 MB.
      lossy q90, exact, alpha_quality 100: method 0: 1.4 s, 2.9 MB; method 4: 4.0 s, 2.7 MB.
      -> With transparency: lossless, method 0, without exact: faster than lossy, and every
      visible pixel and the whole alpha channel come back exactly.
      Opaque: lossy q90, method 2 (12 MP RGB: 0.9 s, 2.6 MB; method 4: 1.2 s, 2.6 MB).
JPEG  quality 92: under 0.1 s.
"""

from __future__ import annotations

import io
import struct
import zlib

import cv2
import numpy as np
from PIL import Image

from bgremover.engine.errors import EngineError, OptionsError

FORMATS: dict[str, tuple[str, str]] = {
    "png": ("image/png", ".png"),
    "webp": ("image/webp", ".webp"),
    "jpeg": ("image/jpeg", ".jpg"),
}
_ALIASES = {"jpg": "jpeg"}
_MAX_SIDE = {"webp": 16_383, "jpeg": 65_535}  # what the formats themselves can store
_PNG_PARAMS = [cv2.IMWRITE_PNG_COMPRESSION, 1, cv2.IMWRITE_PNG_FILTER, cv2.IMWRITE_PNG_FILTER_UP]
_JPEG_QUALITY = 92


def encode_image(pixels: np.ndarray, fmt: str, *, icc_profile: bytes | None = None) -> bytes:
    """Encode H×W×3 (RGB) or H×W×4 (RGBA) uint8 pixels as ``fmt`` ("png", "webp" or "jpeg")."""
    key = _format_key(fmt)
    _check_shape(pixels, channels=(3, 4))
    has_alpha = pixels.shape[2] == 4
    if key == "jpeg" and has_alpha:
        raise OptionsError("JPEG cannot store transparency: choose a background colour or "
                           "image, or PNG/WebP")
    height, width = pixels.shape[:2]
    if key in _MAX_SIDE and max(height, width) > _MAX_SIDE[key]:
        raise OptionsError(f"{key.upper()} cannot store an image of {width}×{height} pixels "
                           f"(at most {_MAX_SIDE[key]} on a side): choose PNG")
    if key == "png":
        return _png(pixels, icc_profile)
    image = Image.fromarray(pixels, "RGBA" if has_alpha else "RGB")
    params: dict[str, object] = {"icc_profile": icc_profile} if icc_profile else {}
    if key == "webp" and has_alpha:
        params.update(lossless=True, method=0, quality=25)
    elif key == "webp":
        params.update(quality=90, method=2)
    else:
        params.update(quality=_JPEG_QUALITY)
    buffer = io.BytesIO()
    image.save(buffer, "WEBP" if key == "webp" else "JPEG", **params)
    return buffer.getvalue()


def encode_mask(alpha: np.ndarray) -> bytes:
    """Encode an H×W uint8 alpha matte as an 8-bit greyscale PNG."""
    _check_shape(alpha, channels=None)
    return _png(alpha, None)


def _format_key(fmt: str) -> str:
    key = str(fmt).strip().lower().lstrip(".")
    key = _ALIASES.get(key, key)
    if key not in FORMATS:
        raise OptionsError(f"Unknown output format {fmt!r}: choose one of "
                           f"{', '.join(FORMATS)}")
    return key


def _check_shape(pixels: np.ndarray, channels: tuple[int, ...] | None) -> None:
    """Programming errors, not people's: the pipeline always hands over uint8 arrays."""
    shape_ok = (isinstance(pixels, np.ndarray) and pixels.dtype == np.uint8
                and (pixels.ndim == 2 if channels is None
                     else pixels.ndim == 3 and pixels.shape[2] in channels)
                and pixels.shape[0] > 0 and pixels.shape[1] > 0)
    if not shape_ok:
        wanted = "H×W" if channels is None else "H×W×3 or H×W×4"
        got = (f"{pixels.dtype} array of shape {pixels.shape}" if isinstance(pixels, np.ndarray)
               else type(pixels).__name__)
        raise ValueError(f"expected a non-empty {wanted} uint8 array, got {got}")


def _png(pixels: np.ndarray, icc_profile: bytes | None) -> bytes:
    if pixels.ndim == 3:
        pixels = cv2.cvtColor(pixels, cv2.COLOR_RGBA2BGRA if pixels.shape[2] == 4
                              else cv2.COLOR_RGB2BGR)
    ok, buffer = cv2.imencode(".png", pixels, _PNG_PARAMS)
    if not ok:
        raise EngineError("The PNG encoder failed")
    png = buffer.tobytes()
    return _with_icc_profile(png, icc_profile) if icc_profile else png


def _with_icc_profile(png: bytes, icc_profile: bytes) -> bytes:
    """Insert an iCCP chunk right after IHDR (it must precede PLTE and IDAT)."""
    ihdr_end = 8 + 4 + 4 + 13 + 4  # signature, then IHDR's length, type, 13-byte body, CRC
    if png[12:16] != b"IHDR":
        raise EngineError("The PNG encoder produced an unexpected header")
    body = b"ICC profile\x00\x00" + zlib.compress(icc_profile)  # name, NUL, method 0 = zlib
    chunk = (struct.pack(">I", len(body)) + b"iCCP" + body
             + struct.pack(">I", zlib.crc32(b"iCCP" + body)))
    return png[:ihdr_end] + chunk + png[ihdr_end:]
