"""Render options from the strings people and the remove.bg API write, framework-free: each
parse_* turns one value into what RenderOptions holds, or raises OptionsError with a message
that can be shown as it is.

    parse_color("#1e90ff80") -> (30, 144, 255, 128)       (colors.parse_color)
    parse_background_color("tomato") -> Background
    parse_margin("10px 20px") -> Margin                    (remove.bg crop_margin)
    parse_scale("80%") -> 0.8; parse_scale("original") -> None
    parse_position("20% 70%") -> (0.2, 0.7); "center" -> (0.5, 0.5); "original" -> None
    parse_roi("10% 10% 90% 90%") -> Roi
    parse_canvas("4:5") / ("1200x800") / ("square") -> Canvas
    parse_shadow_type("drop") -> Shadow | None; parse_shadow(type, opacity=...) with options
    parse_percent("35%") -> 35.0; parse_angle("45deg") -> 45.0
    parse_size("hd") -> 4_000_000 (remove.bg size: the output's pixel cap; None: no cap)
    parse_channels("alpha") -> "mask"; parse_bool("false") -> False
    parse_format("jpg") -> "jpeg"
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import replace
from typing import Any

from bgremover.engine.colors import parse_color
from bgremover.engine.compose import Background, background_from_color
from bgremover.engine.errors import OptionsError
from bgremover.engine.layout import MAX_CANVAS_SIDE, MIN_SCALE, Canvas, Length, Margin, Roi
from bgremover.engine.shadow import SHADOW_TYPES, Shadow

__all__ = [
    "parse_angle",
    "parse_background_color",
    "parse_bool",
    "parse_canvas",
    "parse_channels",
    "parse_color",
    "parse_format",
    "parse_length",
    "parse_margin",
    "parse_percent",
    "parse_position",
    "parse_roi",
    "parse_scale",
    "parse_shadow",
    "parse_shadow_type",
    "parse_size",
]

_NUMBER = r"(\d+(?:\.\d*)?|\.\d+)"
_LENGTH = re.compile(_NUMBER + r"\s*(px|%)?", re.IGNORECASE)
_PERCENT = re.compile(_NUMBER + r"\s*%?")
_ANGLE = re.compile(r"(-?" + _NUMBER + r")\s*(?:deg|°)?", re.IGNORECASE)
_RATIO = re.compile(r"(\d{1,3})\s*:\s*(\d{1,3})")
_PIXELS = re.compile(r"(\d{1,6})\s*[x×]\s*(\d{1,6})", re.IGNORECASE)

# remove.bg's size names: the output's largest pixel count (None: as large as the photo).
SIZES: dict[str, int | None] = {
    "preview": 250_000,
    "small": 250_000,
    "regular": 250_000,
    "medium": 1_500_000,
    "hd": 4_000_000,
    "4k": 10_000_000,
    "full": None,
    "auto": None,
    "50mp": None,
}
CANVAS_NAMES = {"square": (1, 1)}


def _words(text: object, what: str, example: str) -> list[str]:
    if not isinstance(text, str) or not text.strip():
        raise OptionsError(f"{what} is empty: use something like {example}")
    return text.split()


def parse_length(text: str, *, what: str = "length", default_unit: str = "px") -> Length:
    """``"30px"``, ``"10%"`` or a bare number (in ``default_unit``), zero or more."""
    match = _LENGTH.fullmatch(text.strip()) if isinstance(text, str) else None
    if not match:
        raise OptionsError(f"{what} {text!r} is not a length like 30px or 10%")
    unit = (match.group(2) or default_unit).lower()
    return Length(float(match.group(1)), "%" if unit == "%" else "px")


def parse_margin(text: str) -> Margin:
    """remove.bg's crop_margin, CSS style: one value (all sides), two (top/bottom, left/right)
    or four (top, right, bottom, left), each in px or % of the subject's size."""
    words = _words(text, "crop margin", '"30px", "10%" or "5% 10% 5% 10%"')
    if len(words) not in (1, 2, 4):
        raise OptionsError(
            f"crop margin {text!r} has {len(words)} values: give 1, 2 or 4 (top right bottom left)"
        )
    lengths = [parse_length(word, what="crop margin value") for word in words]
    if len(lengths) == 1:
        lengths *= 4
    elif len(lengths) == 2:
        lengths = lengths * 2
    top, right, bottom, left = lengths
    return Margin(top=top, right=right, bottom=bottom, left=left)


def parse_percent(
    text: str | float, *, what: str = "value", low: float = 0, high: float = 100
) -> float:
    """A percentage from ``low`` to ``high``: ``"35%"``, ``"35"`` or the number 35."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _PERCENT.fullmatch(text.strip()) if isinstance(text, str) else None
        if not match:
            raise OptionsError(f"{what} {text!r} is not a percentage like 35%")
        value = float(match.group(1))
    if not low <= value <= high:  # also rejects nan
        raise OptionsError(f"{what} must be from {low:g} % to {high:g} %, got {text!r}")
    return value


def parse_scale(text: str) -> float | None:
    """``"original"`` (None) or 10 %–100 %: the subject's size relative to the canvas."""
    words = _words(text, "scale", '"original" or "80%"')
    if len(words) == 1 and words[0].lower() == "original":
        return None
    if len(words) != 1:
        raise OptionsError(f"scale {text!r} must be one value: original or 10% to 100%")
    return parse_percent(words[0], what="scale", low=MIN_SCALE * 100, high=100) / 100


def parse_position(text: str) -> tuple[float, float] | None:
    """``"original"`` (None), ``"center"``, ``"20%"`` (both axes) or ``"20% 70%"``
    (horizontal, vertical): 0 % aligns the subject left/top, 100 % right/bottom."""
    words = _words(text, "position", '"center", "20%" or "20% 70%"')
    lowered = [word.lower() for word in words]
    if lowered == ["original"]:
        return None
    if lowered in (["center"], ["centre"]):
        return (0.5, 0.5)
    if len(words) not in (1, 2):
        raise OptionsError(f"position {text!r} must be original, center, or one or two percentages")
    values = [parse_percent(word, what="position") / 100 for word in words]
    return (values[0], values[-1])


def parse_roi(text: str) -> Roi:
    """remove.bg's roi ``"x1 y1 x2 y2"``, each in px or % (x of the width, y of the height);
    the region must not be empty."""
    words = _words(text, "roi", '"0% 0% 100% 100%" or "10px 20px 400px 300px"')
    if len(words) != 4:
        raise OptionsError(f"roi {text!r} needs 4 values: x1 y1 x2 y2 (px or %)")
    left, top, right, bottom = (parse_length(word, what="roi value") for word in words)
    for low, high, axis in ((left, right, "x"), (top, bottom, "y")):
        if low.unit == high.unit and high.value <= low.value:
            raise OptionsError(f"roi {text!r} is empty: {axis}2 must be larger than {axis}1")
        if low.unit == high.unit == "%" and high.value > 100:
            raise OptionsError(f"roi {text!r} reaches beyond 100 %")
    return Roi(left=left, top=top, right=right, bottom=bottom)


def parse_canvas(text: str) -> Canvas:
    """``"original"``, ``"square"``, an aspect ``"4:5"`` / ``"16:9"`` or pixels ``"1200x800"``."""
    words = _words(text, "canvas", "original, square, 4:5, 16:9 or 1200x800")
    value = "".join(words).lower()
    if value == "original":
        return Canvas()
    if value in CANVAS_NAMES:
        return Canvas("aspect", *CANVAS_NAMES[value])
    ratio = _RATIO.fullmatch(value)
    if ratio:
        return Canvas("aspect", int(ratio.group(1)), int(ratio.group(2)))
    pixels = _PIXELS.fullmatch(value)
    if pixels:
        return Canvas("pixels", int(pixels.group(1)), int(pixels.group(2)))
    raise OptionsError(
        f"canvas {text!r} is not original, square, a ratio like 4:5 or 16:9, or a size in "
        f"pixels like 1200x800 (at most {MAX_CANVAS_SIDE} a side)"
    )


def parse_angle(text: str | float) -> float:
    """A direction in degrees (``"45"``, ``"45deg"``): 0 right, 90 down, 180 left, 270 up."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        value = float(text)
    else:
        match = _ANGLE.fullmatch(text.strip()) if isinstance(text, str) else None
        if not match:
            raise OptionsError(f"shadow direction {text!r} is not an angle in degrees like 45")
        value = float(match.group(1))
    if not math.isfinite(value) or not -360 <= value <= 360:
        raise OptionsError(f"shadow direction must be from -360 to 360 degrees, got {text!r}")
    return value


def parse_shadow_type(text: str) -> Shadow | None:
    """remove.bg's shadow_type: ``none`` (None), ``drop``, ``3D`` or ``car`` (drop shadows
    with their own default direction, distance and softness)."""
    value = text.strip().lower() if isinstance(text, str) else ""
    if value in ("none", "false", "off"):
        return None
    if value in ("true", "on"):
        value = "drop"
    if value not in SHADOW_TYPES:
        raise OptionsError(f"shadow type {text!r} is not one of none, drop, 3D or car")
    return SHADOW_TYPES[value]


# parse_shadow's settings, each read on its own into Shadow's units (in the order it reads
# them): opacity 0–100 %, softness (blur) and distance in % of the subject's longer side
# (0–50 %, 0–100 %), direction in degrees.
SHADOW_SETTINGS: dict[str, Callable[[str | float], float]] = {
    "opacity": lambda text: parse_percent(text, what="shadow opacity"),
    "softness": lambda text: parse_percent(text, what="shadow softness", high=50) / 100,
    "distance": lambda text: parse_percent(text, what="shadow distance") / 100,
    "direction": parse_angle,
}


def _parse(_name: str, parse: Callable[[Any], Any], value: Any) -> Any:
    return parse(value)


def parse_shadow(
    shadow_type: str = "drop",
    *,
    opacity: str | float | None = None,
    softness: str | float | None = None,
    direction: str | float | None = None,
    distance: str | float | None = None,
    read: Callable[[str, Callable[[Any], Any], Any], Any] = _parse,
) -> Shadow | None:
    """A shadow type with any of its settings changed (see SHADOW_SETTINGS); None for type
    none or opacity 0. Each part goes through ``read(name, parse, value)``: "type", then
    every given setting (for type none too: a typo should not pass), so a caller wrapping it
    can say which one was bad."""
    shadow = read("type", parse_shadow_type, shadow_type)
    given = dict(opacity=opacity, softness=softness, direction=direction, distance=distance)
    settings = {
        name: read(name, parse, given[name])
        for name, parse in SHADOW_SETTINGS.items()
        if given[name] is not None
    }
    if shadow is None:
        return None
    shadow = replace(shadow, **settings)
    return None if shadow.opacity == 0 else shadow


def parse_background_color(text: str) -> Background:
    """A background colour (see parse_color); alpha 0 means no background."""
    return background_from_color(parse_color(text))


def parse_size(text: str) -> int | None:
    """remove.bg's size: the output's largest pixel count, None for no cap (full/auto/50MP)."""
    value = text.strip().lower() if isinstance(text, str) else ""
    if value not in SIZES:
        raise OptionsError(
            f"size {text!r} is not one of preview, small, regular, medium, hd, 4k, full, "
            "auto or 50MP"
        )
    return SIZES[value]


def parse_channels(text: str) -> str:
    """remove.bg's channels: ``rgba`` (the image: "cutout") or ``alpha`` (the mask)."""
    value = text.strip().lower() if isinstance(text, str) else ""
    if value not in ("rgba", "alpha"):
        raise OptionsError(f"channels {text!r} must be rgba or alpha")
    return "cutout" if value == "rgba" else "mask"


def parse_bool(text: str | bool, *, what: str = "value") -> bool:
    """``true``/``false`` (also 1/0, yes/no, on/off), any case."""
    if isinstance(text, bool):
        return text
    value = text.strip().lower() if isinstance(text, str) else ""
    if value in ("true", "1", "yes", "on"):
        return True
    if value in ("false", "0", "no", "off"):
        return False
    raise OptionsError(f"{what} {text!r} must be true or false")


def parse_format(text: str, *, transparent: bool = True) -> str:
    """``png``, ``jpg``/``jpeg``, ``webp``, ``zip`` or ``auto`` (PNG when the result is
    transparent, else JPEG, as remove.bg does)."""
    value = text.strip().lower() if isinstance(text, str) else ""
    if value == "auto":
        return "png" if transparent else "jpeg"
    value = {"jpg": "jpeg"}.get(value, value)
    if value not in ("png", "jpeg", "webp", "zip"):
        raise OptionsError(f"format {text!r} must be auto, png, jpg, webp or zip")
    return value
