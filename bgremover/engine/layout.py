"""Canvas and layout: which part of the alpha counts (roi, hardening), how big the output is
(canvas, crop, size cap), and where the photo lands on it (scale, position).

The result of the geometry is a Plan: a canvas of width×height pixels and one scale-and-move
of the photo onto it (photo pixel (x, y) lands at (left + scale·x, top + scale·y)). The
editor's preview (editor/static/editor/preview.js, planLayout) does the same arithmetic;
keep the two matching, rounding included (half up, never Python's round-half-even).

Semantics follow remove.bg:
- ``crop_margin`` None: the canvas starts from the whole photo. A float (the editor's and
  the command line's older option): the subject's box grown by that fraction of its longer
  side, clipped to the photo. A Margin: the subject's box grown per side in px or % of the
  subject's size, each side at most 50 % of the subject's size and at most 500 px, and not
  clipped: beyond the photo is transparent (or background).
- ``canvas``: original (that box), an aspect ratio (the smallest canvas of that shape that
  holds the box: the photo is padded, never cut) or exact pixels.
- ``scale`` None ("original"): the box is fitted into the canvas (scale 1 unless the canvas
  is a custom size); else the framed subject (the crop box when cropping, else the subject's
  box) is scaled so that its longer relative side covers that fraction of the canvas.
- ``position`` None ("original"): centred box; else (x, y) fractions: 0 = left/top aligned,
  1 = right/bottom aligned. A scale without a position centres the subject.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from bgremover.engine.errors import OptionsError

Box = tuple[int, int, int, int]  # left, top, right (exclusive), bottom (exclusive)

# remove.bg: "the maximum margin that can be added on each side is 50% of the subject
# dimensions or 500 pixels"; read as both limits holding.
MARGIN_CAP_FRACTION = 0.5
MARGIN_CAP_PX = 500.0
# A canvas larger than the photo (padding to an aspect, a custom size) is held to this many
# pixels (remove.bg's own largest output), downscaled to fit: bounds every buffer after it.
CANVAS_PIXEL_LIMIT = 50_000_000
MAX_CANVAS_SIDE = 20_000
MIN_SCALE = 0.1


def half_up(value: float) -> int:
    """Round half up, as JavaScript's Math.round: the preview must land on the same pixel."""
    return math.floor(value + 0.5)


@dataclass(frozen=True)
class Length:
    """A length in pixels or in percent of a reference (the subject's or the photo's size)."""

    value: float
    unit: Literal["px", "%"] = "px"

    def __post_init__(self) -> None:
        if self.unit not in ("px", "%"):
            raise OptionsError(f"a length's unit must be px or %, not {self.unit!r}")
        if not isinstance(self.value, numbers.Real) or not 0 <= self.value < math.inf:
            raise OptionsError(f"a length must be a number of zero or more, got {self.value!r}")

    def resolve(self, reference: float) -> float:
        return float(self.value) if self.unit == "px" else self.value / 100 * reference


@dataclass(frozen=True)
class Margin:
    """remove.bg's crop margin, per side."""

    top: Length = field(default_factory=lambda: Length(0))
    right: Length = field(default_factory=lambda: Length(0))
    bottom: Length = field(default_factory=lambda: Length(0))
    left: Length = field(default_factory=lambda: Length(0))

    def sides(self, width: float, height: float) -> tuple[float, float, float, float]:
        """(top, right, bottom, left) in pixels for a subject of width×height, capped."""

        def capped(length: Length, size: float) -> float:
            return min(length.resolve(size), MARGIN_CAP_FRACTION * size, MARGIN_CAP_PX)

        return (
            capped(self.top, height),
            capped(self.right, width),
            capped(self.bottom, height),
            capped(self.left, width),
        )


@dataclass(frozen=True)
class Roi:
    """Region of interest: x in px or % of the photo's width, y of its height."""

    left: Length = field(default_factory=lambda: Length(0, "%"))
    top: Length = field(default_factory=lambda: Length(0, "%"))
    right: Length = field(default_factory=lambda: Length(100, "%"))
    bottom: Length = field(default_factory=lambda: Length(100, "%"))

    def box(self, width: int, height: int) -> Box:
        left = min(width, half_up(self.left.resolve(width)))
        top = min(height, half_up(self.top.resolve(height)))
        right = min(width, half_up(self.right.resolve(width)))
        bottom = min(height, half_up(self.bottom.resolve(height)))
        return (left, top, max(left, right), max(top, bottom))


@dataclass(frozen=True)
class Canvas:
    """The output's size: the crop box's own ("original"), an aspect ratio, or pixels."""

    kind: Literal["original", "aspect", "pixels"] = "original"
    width: int = 0  # aspect: the ratio's terms (4, 5); pixels: the size
    height: int = 0

    def __post_init__(self) -> None:
        if self.kind not in ("original", "aspect", "pixels"):
            raise OptionsError(f"canvas kind must be original, aspect or pixels, not {self.kind!r}")
        if self.kind == "original":
            return
        sides = (self.width, self.height)
        if not all(isinstance(side, numbers.Integral) and side > 0 for side in sides):
            raise OptionsError(f"canvas sides must be whole numbers above 0, got {sides}")
        if self.kind == "pixels" and max(sides) > MAX_CANVAS_SIDE:
            raise OptionsError(
                f"a canvas of {self.width}×{self.height} px is too large: at most "
                f"{MAX_CANVAS_SIDE} px a side"
            )
        if self.kind == "aspect" and max(sides) / min(sides) > 20:
            raise OptionsError(f"canvas ratio {self.width}:{self.height} is beyond 1:20")

    def size_for(self, width: int, height: int) -> tuple[int, int]:
        """The canvas for a box of width×height."""
        if self.kind == "pixels":
            return self.width, self.height
        if self.kind == "aspect":
            a, b = self.width, self.height
            if width * b >= height * a:  # the box is wider than the aspect: pad above/below
                return width, max(1, half_up(width * b / a))
            return max(1, half_up(height * a / b)), height
        return width, height


@dataclass(frozen=True)
class Plan:
    """A canvas of width×height and where the photo lands on it."""

    width: int
    height: int
    scale: float
    left: float
    top: float

    def photo_rect(self, photo_width: int, photo_height: int) -> Box:
        """The whole photo's rectangle on the canvas in whole pixels (may reach outside)."""
        return (
            half_up(self.left),
            half_up(self.top),
            half_up(self.left + self.scale * photo_width),
            half_up(self.top + self.scale * photo_height),
        )

    def map_box(self, box: Box) -> Box:
        left, top, right, bottom = box
        return (
            half_up(self.left + self.scale * left),
            half_up(self.top + self.scale * top),
            half_up(self.left + self.scale * right),
            half_up(self.top + self.scale * bottom),
        )


def alpha_box(alpha: np.ndarray) -> Box | None:
    """The box of the pixels with α > 0, or None when there are none."""
    rows = np.flatnonzero(alpha.any(axis=1))
    if rows.size == 0:
        return None
    cols = np.flatnonzero(alpha.any(axis=0))
    return (int(cols[0]), int(rows[0]), int(cols[-1]) + 1, int(rows[-1]) + 1)


def plan_layout(
    width: int,
    height: int,
    subject: Box | None,
    *,
    crop_margin: float | Margin | None = None,
    canvas: Canvas = Canvas(),
    scale: float | None = None,
    position: tuple[float, float] | None = None,
    max_pixels: int | None = None,
) -> Plan:
    """Where a width×height photo whose subject has box ``subject`` lands (see the module)."""
    if scale is not None and not MIN_SCALE <= scale <= 1:
        raise OptionsError(f"scale must be between 10 % and 100 %, got {scale!r}")
    if position is not None and not all(0 <= p <= 1 for p in position):
        raise OptionsError(f"position must be between 0 % and 100 %, got {position!r}")
    found = subject or (0, 0, width, height)
    if crop_margin is None:
        base = (0.0, 0.0, float(width), float(height))
        framed = tuple(map(float, found))
    elif isinstance(crop_margin, Margin):
        sl, st, sr, sb = found
        top, right, bottom, left = crop_margin.sides(sr - sl, sb - st)
        # Whole pixels, so that a margin in px is exactly that many pixels.
        base = (
            float(sl - half_up(left)),
            float(st - half_up(top)),
            float(sr + half_up(right)),
            float(sb + half_up(bottom)),
        )
        framed = base
    else:
        base = tuple(map(float, grown_box(found, crop_margin, width, height)))
        framed = base
    bl, bt, br, bb = base
    box_width, box_height = br - bl, bb - bt
    canvas_width, canvas_height = canvas.size_for(int(box_width), int(box_height))
    fl, ft, fr, fb = framed
    framed_width, framed_height = max(1.0, fr - fl), max(1.0, fb - ft)
    if scale is None:
        k = min(canvas_width / box_width, canvas_height / box_height)
        if position is None:
            left = (canvas_width - k * box_width) / 2 - k * bl
            top = (canvas_height - k * box_height) / 2 - k * bt
            return _capped(
                Plan(canvas_width, canvas_height, k, left, top), width * height, max_pixels
            )
    else:
        k = scale * min(canvas_width / framed_width, canvas_height / framed_height)
        position = position or (0.5, 0.5)
    px, py = position
    left = px * (canvas_width - k * framed_width) - k * fl
    top = py * (canvas_height - k * framed_height) - k * ft
    return _capped(Plan(canvas_width, canvas_height, k, left, top), width * height, max_pixels)


def _capped(plan: Plan, photo_pixels: int, max_pixels: int | None) -> Plan:
    """The plan shrunk (canvas and photo alike) to at most ``max_pixels``, and never above
    CANVAS_PIXEL_LIMIT unless the photo itself is larger."""
    limit = max(CANVAS_PIXEL_LIMIT, photo_pixels)
    if max_pixels is not None:
        limit = min(limit, max_pixels)
    pixels = plan.width * plan.height
    if pixels <= limit:
        return plan
    factor = math.sqrt(limit / pixels)
    width = max(1, math.floor(plan.width * factor))
    height = max(1, math.floor(plan.height * factor))
    factor = min(width / plan.width, height / plan.height)
    return Plan(width, height, plan.scale * factor, plan.left * factor, plan.top * factor)


def grown_box(box: Box, margin: float, width: int, height: int) -> Box:
    """``box`` grown on every side by ``margin`` × its longer side, clipped to the photo."""
    left, top, right, bottom = box
    grow = round(margin * max(right - left, bottom - top))
    return (
        max(0, left - grow),
        max(0, top - grow),
        min(width, right + grow),
        min(height, bottom + grow),
    )


def apply_roi(alpha: np.ndarray, roi: Roi | None) -> np.ndarray:
    """``alpha`` with everything outside the region of interest made transparent (a new
    array only when the region leaves something out)."""
    if roi is None:
        return alpha
    height, width = alpha.shape
    left, top, right, bottom = roi.box(width, height)
    if (left, top, right, bottom) == (0, 0, width, height):
        return alpha
    kept = np.zeros_like(alpha)
    kept[top:bottom, left:right] = alpha[top:bottom, left:right]
    return kept


def harden(alpha: np.ndarray, box: Box | None) -> np.ndarray:
    """remove.bg's semitransparency=false: every pixel opaque or transparent (split at 50 %),
    except a band one pixel either side of the subject's outline that keeps its own alpha so
    the edge stays anti-aliased. Works inside ``box`` (the subject's) only."""
    if box is None:
        return alpha
    left, top, right, bottom = box
    # One pixel of border so the outline's band also reaches the box's own edge.
    pad = (max(0, left - 1), max(0, top - 1), min(alpha.shape[1], right + 1))
    region = (slice(pad[1], min(alpha.shape[0], bottom + 1)), slice(pad[0], pad[2]))
    soft = alpha[region]
    _, hard = cv2.threshold(soft, 127, 255, cv2.THRESH_BINARY)
    kernel = np.ones((3, 3), np.uint8)
    band = cv2.dilate(hard, kernel) != cv2.erode(hard, kernel)
    hard[band] = soft[band]
    out = alpha.copy()
    out[region] = hard
    return out
