"""Backgrounds and the pieces scene.py composites the subject with (the blend, cover fit,
blur background), and the subject's crop box.

Everything here works on uint8 numpy arrays and is written for 12–24 MP photos: blends run
in uint16 integer arithmetic over row chunks (never a float64 copy of the whole image), and
the blur background is computed at a reduced working size, then scaled back up.

Blur background: a plain blur of the photo smears the subject's colours into a halo around
it. We use normalised convolution instead — blur(photo·(1−α)) / blur(1−α) — so each
background pixel is an average of *background* pixels only; where a neighbourhood is almost
all subject (deep inside it, hidden by the subject anyway) we fade to the plain blur.
"""

from __future__ import annotations

import math
import numbers
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from bgremover.engine.colors import CSS_COLORS, hex_digits, parse_color
from bgremover.engine.errors import EngineError, OptionsError
from bgremover.engine.layout import Box, alpha_box, grown_box

# Gaussian sigma at blur strength 100, as a fraction of the photo's longer side; strength
# scales it linearly (strength 50 on a 4000 px photo: sigma 80 px).
BLUR_SIGMA_AT_MAX = 0.04
# The blur runs on a copy scaled so that its sigma is about this many pixels: a Gaussian
# that wide is smooth enough to upscale bilinearly without visible steps. Even the lightest
# blur runs at half size or less: it looks the same and takes a quarter of the time.
_WORKING_SIGMA = 4.0
_MAX_WORKING_SCALE = 0.5
# Below this share of background weight in a neighbourhood, fade to the plain blur.
_MIN_BACKGROUND_SHARE = 0.02
# Pixels per chunk for row-chunked arithmetic: bounds temporary memory to a few MB.
_CHUNK_PIXELS = 1 << 20

_BLUR = re.compile(r"blur(?::(.*))?", re.IGNORECASE)


@dataclass(frozen=True)
class Background:
    """What goes behind the subject. Invalid values raise OptionsError on construction."""

    kind: Literal["transparent", "color", "image", "blur"] = "transparent"
    color: tuple[int, int, int] = (255, 255, 255)
    # H×W×3 uint8 RGB of any size; the render (scene.py) cover-fits it to the canvas.
    image: np.ndarray | None = field(default=None, repr=False)
    blur_strength: float = 50.0  # 1..100, for kind="blur"
    opacity: int = 255  # the colour's alpha, for kind="color": below 255 the result is RGBA

    @property
    def opaque(self) -> bool:
        """Whether nothing shows through it: a picture, a blur, or a colour of alpha 255."""
        return self.kind in ("image", "blur") or (self.kind == "color" and self.opacity == 255)

    def __post_init__(self) -> None:
        if self.kind not in ("transparent", "color", "image", "blur"):
            raise OptionsError(
                f"unknown background kind {self.kind!r}: use transparent, color, image or blur"
            )
        color = tuple(self.color)
        if len(color) != 3 or not all(
            isinstance(c, (int, np.integer)) and 0 <= c <= 255 for c in color
        ):
            raise OptionsError(
                f"background colour must be three integers 0–255, got {self.color!r}"
            )
        object.__setattr__(self, "color", tuple(int(c) for c in color))
        if not isinstance(self.opacity, (int, np.integer)) or not 0 <= self.opacity <= 255:
            raise OptionsError(f"background opacity must be 0–255, got {self.opacity!r}")
        strength = self.blur_strength
        if not isinstance(strength, numbers.Real) or not 1 <= strength <= 100:
            raise OptionsError(f"blur strength must be between 1 and 100, got {strength!r}")
        if self.kind == "image":
            image = self.image
            if (
                not isinstance(image, np.ndarray)
                or image.dtype != np.uint8
                or image.ndim != 3
                or image.shape[2] != 3
                or image.size == 0
            ):
                raise OptionsError("an image background needs an H×W×3 uint8 RGB picture")


def parse_background(spec: str | os.PathLike[str]) -> Background:
    """Read a background choice as people type it.

    ``"transparent"``, a colour (``"#RRGGBB"``, ``"#RGB"``, ``"#RRGGBBAA"``, ``#`` optional,
    or a CSS colour name: see colors.parse_color), ``"blur"`` (strength 50) or ``"blur:NN"``
    (NN from 1 to 100), or else the path of an image file, decoded now (an image with
    transparency is flattened onto white).
    """
    text = os.fspath(spec).strip() if isinstance(spec, (str, os.PathLike)) else None
    if not text:
        raise OptionsError(
            "background is empty: use transparent, #RRGGBB, blur, blur:NN or an image path"
        )
    lowered = text.lower()
    if lowered == "transparent":
        return Background()
    # Without "#", only a colour name or hex digits look like a colour, not a file name.
    if text.startswith("#") or lowered in CSS_COLORS or hex_digits(text) is not None:
        try:
            return background_from_color(parse_color(text))
        except OptionsError as exc:
            raise OptionsError(f"background {exc}") from exc
    blur = _BLUR.fullmatch(text)
    if blur:
        return Background(kind="blur", blur_strength=_parse_blur_strength(blur.group(1)))
    return Background(kind="image", image=_load_background_image(text))


def background_from_color(rgba: tuple[int, int, int, int]) -> Background:
    """A colour background; a fully transparent colour is no background at all."""
    r, g, b, a = rgba
    if a == 0:
        return Background()
    return Background(kind="color", color=(r, g, b), opacity=a)


def _parse_blur_strength(value: str | None) -> float:
    if value is None:
        return 50.0
    try:
        strength = float(value)
    except ValueError:
        strength = math.nan
    if not 1 <= strength <= 100:  # also rejects nan
        raise OptionsError(f"blur strength must be a number from 1 to 100, got {value!r}")
    return strength


def _load_background_image(path: str) -> np.ndarray:
    if not os.path.isfile(path):
        raise OptionsError(
            f"background {path!r} is not transparent, a #RRGGBB colour, blur, blur:NN, "
            "or an existing image file"
        )
    # Imported here: preprocess pulls in the whole decoder stack, which colour and blur
    # backgrounds never need.
    from bgremover.engine.preprocess import decode_image

    try:
        decoded = decode_image(path)
    except EngineError as exc:
        raise OptionsError(f"background image {path!r} cannot be used: {exc}") from exc
    if decoded.alpha is None:
        return decoded.rgb
    white = np.full((1, 1, 3), 255, dtype=np.uint8)
    return _blend(decoded.rgb, decoded.alpha, white)


def _describe(value: object) -> str:
    if isinstance(value, np.ndarray):
        return f"{value.dtype} array of shape {value.shape}"
    return type(value).__name__


def _row_chunks(height: int, width: int) -> Iterator[slice]:
    step = max(1, _CHUNK_PIXELS // max(1, width))
    for top in range(0, height, step):
        yield slice(top, top + step)


def _blend(foreground: np.ndarray, alpha: np.ndarray, background: np.ndarray) -> np.ndarray:
    """round((fg·α + bg·(255−α)) / 255) per channel; ``background`` is H×W×3 or 1×1×3.

    fg·α + bg·(255−α) ≤ 255·255, so uint16 holds it exactly.
    """
    height, width = alpha.shape
    out = np.empty((height, width, 3), dtype=np.uint8)
    full_size = background.shape[0] != 1
    for rows in _row_chunks(height, width):
        a = alpha[rows, :, None].astype(np.uint16)
        acc = foreground[rows].astype(np.uint16)
        acc *= a
        np.subtract(255, a, out=a)
        bg = background[rows] if full_size else background
        acc += bg.astype(np.uint16) * a
        acc += 127
        acc //= 255
        out[rows] = acc
    return out


def cover_fit(image: np.ndarray, width: int, height: int) -> np.ndarray:
    """Scale ``image`` to cover width×height and crop the centre: no bars, no distortion."""
    src_height, src_width = image.shape[:2]
    if src_width * height > width * src_height:  # source is wider than the target
        crop_width = max(1, round(src_height * width / height))
        left = (src_width - crop_width) // 2
        region = image[:, left : left + crop_width]
    else:
        crop_height = max(1, round(src_width * height / width))
        top = (src_height - crop_height) // 2
        region = image[top : top + crop_height]
    if region.shape[:2] == (height, width):
        return np.ascontiguousarray(region)
    shrinking = region.shape[0] > height
    interpolation = cv2.INTER_AREA if shrinking else cv2.INTER_CUBIC
    return cv2.resize(np.ascontiguousarray(region), (width, height), interpolation=interpolation)


def blur_sigma(strength: float, width: int, height: int) -> float:
    """Gaussian sigma in pixels for a blur strength 1..100 on a width×height photo."""
    return max(1.0, strength / 100 * BLUR_SIGMA_AT_MAX * max(width, height))


def blurred_background(original: np.ndarray, alpha: np.ndarray, strength: float) -> np.ndarray:
    """The photo blurred with the subject masked out (normalised convolution), H×W×3 uint8."""
    height, width = alpha.shape
    sigma = blur_sigma(strength, width, height)
    scale = min(_MAX_WORKING_SCALE, _WORKING_SIGMA / sigma)
    work_size = (max(1, round(width * scale)), max(1, round(height * scale)))

    # numerator photo·w and denominator 255·w with w = 255 − α: both ≤ 65025, exact in uint16.
    numerator = np.empty((height, width, 3), dtype=np.uint16)
    denominator = np.empty((height, width), dtype=np.uint16)
    for rows in _row_chunks(height, width):
        weight = 255 - alpha[rows].astype(np.uint16)
        np.multiply(original[rows], weight[..., None], out=numerator[rows])
        np.multiply(weight, 255, out=denominator[rows])

    def to_work(pixels: np.ndarray) -> np.ndarray:
        if work_size == (width, height):
            return pixels
        return cv2.resize(pixels, work_size, interpolation=cv2.INTER_AREA)

    def blur(pixels: np.ndarray) -> np.ndarray:
        return cv2.GaussianBlur(pixels, (0, 0), sigma * scale, borderType=cv2.BORDER_REFLECT)

    numerator = blur(to_work(numerator))
    denominator = blur(to_work(denominator))
    plain = blur(to_work(original))

    work_height = numerator.shape[0]
    result = np.empty_like(plain)
    for rows in _row_chunks(work_height, work_size[0]):
        den = denominator[rows].astype(np.float32)[..., None]
        masked = numerator[rows].astype(np.float32) * 255 / np.maximum(den, 1)
        trust = np.minimum(den / (_MIN_BACKGROUND_SHARE * 65025), 1)
        mixed = masked * trust + plain[rows] * (1 - trust)
        result[rows] = np.clip(mixed + 0.5, 0, 255)
    if work_size == (width, height):
        return result
    return cv2.resize(result, (width, height), interpolation=cv2.INTER_LINEAR)


def subject_box(alpha: np.ndarray, margin: float) -> Box:
    """(left, top, right, bottom) of the pixels with α > 0, grown on every side by
    ``margin`` × the box's longer side and clipped to the image; right and bottom are
    exclusive, so ``crop`` takes ``pixels[top:bottom, left:right]``.

    With no visible pixel at all the whole image is returned: cropping is then a no-op, and
    the caller can tell that case apart with ``alpha.any()``.
    """
    if not isinstance(alpha, np.ndarray) or alpha.ndim != 2 or alpha.size == 0:
        raise OptionsError(f"alpha must be a non-empty H×W array, got {_describe(alpha)}")
    if not isinstance(margin, numbers.Real) or not 0 <= margin < math.inf:
        raise OptionsError(f"crop margin must be zero or more, got {margin!r}")
    height, width = alpha.shape
    box = alpha_box(alpha)
    return (0, 0, width, height) if box is None else grown_box(box, margin, width, height)
