"""A person's touch-ups to a cut-out, replayed on the automatic result: smart marks (keep /
remove, which engine.hints follows), removed objects, and plain Erase / Restore strokes.

Edits are a list of operations in full-resolution pixel coordinates, never pixels: small to
store, replayed at any size (the editor's preview, the full-resolution download), and still
right after a re-run changes the automatic result. Order of application: all smart marks
together (hints are stateless), then brush strokes in the order drawn (they paint over what
the marks worked out), then object removals (a part is listed, and removed, whole).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Literal

import cv2
import numpy as np

from bgremover.engine.errors import OptionsError
from bgremover.engine.hints import KEEP, NO_HINT, REMOVE, HintOptions, Refined, apply_hints
from bgremover.engine.matting import _disk

Tool = Literal["keep", "remove", "erase", "restore"]
SMART_TOOLS = ("keep", "remove")
BRUSH_TOOLS = ("erase", "restore")
Box = tuple[int, int, int, int]

# Width of a brush stroke's soft edge, as a share of its radius.
BRUSH_FEATHER = 0.35
# Samples across a brush's soft edge when it is worked out below full resolution.
BRUSH_SOFT_EDGE_SAMPLES = 32
# Alpha at or above this counts as part of an object (see find_objects).
OBJECT_LEVEL = 128
# Objects smaller than this share of the largest one are not listed (noise, not choices).
OBJECT_MIN_SHARE = 0.0005


@dataclass(frozen=True)
class EditLimits:
    """What one image's edits may hold: a script's flood is refused, not replayed."""

    max_edits: int = 300
    max_points_per_stroke: int = 5000
    max_points: int = 50_000
    # Erase / Restore strokes paint every pixel of their box at full resolution on each
    # download: their boxes may cover the photo this many times over in all.
    max_brush_cover: float = 25.0


@dataclass(frozen=True)
class Stroke:
    tool: Tool
    radius: float  # full-resolution pixels
    points: tuple[tuple[float, float], ...]  # full-resolution x, y


@dataclass(frozen=True)
class ObjectRemoval:
    point: tuple[float, float]  # a full-resolution pixel inside the object


Edit = Stroke | ObjectRemoval


@dataclass(frozen=True)
class CutoutObject:
    """One separate part of a cut-out (a subject, or a stray piece the network kept)."""

    box: Box  # left, top, right (exclusive), bottom (exclusive), full resolution
    area: int  # pixels, full resolution (estimated from the size it was found at)
    point: tuple[int, int]  # its pixel farthest from its border, full resolution
    removed: bool = False  # an ObjectRemoval of the edits lies on it


def _number(value: object, what: str) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        raise OptionsError(f"{what} must be a number.")
    return float(value)


def _point(value: object, width: int, height: int, reach: float, what: str) -> tuple[float, float]:
    if not isinstance(value, list | tuple) or len(value) != 2:
        raise OptionsError(f"{what} must be a pair of numbers [x, y].")
    x, y = _number(value[0], what), _number(value[1], what)
    if not (-reach <= x <= width + reach and -reach <= y <= height + reach):
        raise OptionsError(f"{what} ({x:g}, {y:g}) lies outside the {width}×{height} image.")
    return (x, y)


def parse_edits(
    data: object, width: int, height: int, limits: EditLimits = EditLimits()
) -> tuple[Edit, ...]:
    """JSON-like ``data`` (a list of {"tool", "radius", "points"} strokes and {"tool":
    "object", "point"} removals) checked against a ``width``×``height`` photo; OptionsError
    with a message for a person on anything malformed, out of the image or over ``limits``."""
    if not isinstance(data, list):
        raise OptionsError("Edits must be a list.")
    if len(data) > limits.max_edits:
        raise OptionsError(f"Too many edits: at most {limits.max_edits} per image.")
    max_radius = max(width, height) / 2
    edits: list[Edit] = []
    total, covered = 0, 0
    for index, item in enumerate(data, 1):
        what = f"Edit {index}"
        if not isinstance(item, dict):
            raise OptionsError(f"{what} must be an object.")
        tool = item.get("tool")
        if tool == "object":
            edits.append(ObjectRemoval(_point(item.get("point"), width, height, 0, what)))
            continue
        if tool not in SMART_TOOLS + BRUSH_TOOLS:
            raise OptionsError(f"{what}: the tool must be keep, remove, erase, restore or object.")
        radius = _number(item.get("radius"), f"{what}'s radius")
        if not 0.5 <= radius <= max_radius:
            raise OptionsError(f"{what}'s radius must be between 0.5 and {max_radius:g} pixels.")
        points = item.get("points")
        if not isinstance(points, list) or not points:
            raise OptionsError(f"{what} needs a list of points.")
        if len(points) > limits.max_points_per_stroke:
            raise OptionsError(f"{what} has more than {limits.max_points_per_stroke} points.")
        total += len(points)
        if total > limits.max_points:
            raise OptionsError(f"Too many points: at most {limits.max_points} in all.")
        parsed = tuple(_point(point, width, height, radius, f"{what}'s point") for point in points)
        stroke = Stroke(tool, radius, parsed)  # type: ignore[arg-type]
        if tool in BRUSH_TOOLS:
            covered += _brush_area(stroke, width, height)
            if covered > limits.max_brush_cover * width * height:
                raise OptionsError(
                    "Too much brushing: Erase and Restore strokes may cover the image at most "
                    f"{limits.max_brush_cover:g} times over in all. Undo some strokes, or use "
                    "Reset."
                )
        edits.append(stroke)
    return tuple(edits)


def _brush_area(stroke: Stroke, width: int, height: int) -> int:
    """Pixels that painting ``stroke`` at full resolution works on (its box)."""
    box = _brush_box(stroke, 1.0, (height, width))[0]
    return 0 if box is None else (box[2] - box[0]) * (box[3] - box[1])


def edits_as_data(edits: Sequence[Edit]) -> list[dict[str, object]]:
    """``edits`` as JSON-ready data, the inverse of parse_edits."""
    return [
        {"tool": "object", "point": list(edit.point)}
        if isinstance(edit, ObjectRemoval)
        else {"tool": edit.tool, "radius": edit.radius, "points": [list(p) for p in edit.points]}
        for edit in edits
    ]


def _draw(canvas: np.ndarray, stroke: Stroke, value: int, scale: float) -> None:
    """Paint ``stroke`` (round caps and joins) into ``canvas`` at ``scale``, with ``value``."""
    shift = 4  # sub-pixel precision for OpenCV's drawing
    factor = scale * (1 << shift)
    points = [(round(x * factor), round(y * factor)) for x, y in stroke.points]
    radius = max(1, round(stroke.radius * scale))
    if len(points) == 1:
        cv2.circle(canvas, points[0], radius << shift, value, -1, cv2.LINE_8, shift)
        return
    for start, end in zip(points, points[1:], strict=False):
        cv2.line(canvas, start, end, value, 2 * radius + 1, cv2.LINE_8, shift)


def hint_map(marks: Sequence[Stroke], shape: tuple[int, int], scale: float = 1.0) -> np.ndarray:
    """The engine's hint map (hints.KEEP / REMOVE / NO_HINT) for smart ``marks`` drawn at
    ``scale`` into an image of ``shape``; later marks paint over earlier ones."""
    hints = np.full(shape, NO_HINT, dtype=np.uint8)
    for mark in marks:
        _draw(hints, mark, KEEP if mark.tool == "keep" else REMOVE, scale)
    return hints


def _stroke_box(stroke: Stroke, scale: float, shape: tuple[int, int], pad: int) -> Box | None:
    xs = [x * scale for x, _ in stroke.points]
    ys = [y * scale for _, y in stroke.points]
    reach = stroke.radius * scale + pad
    left, top = max(0, math.floor(min(xs) - reach)), max(0, math.floor(min(ys) - reach))
    right = min(shape[1], math.ceil(max(xs) + reach) + 1)
    bottom = min(shape[0], math.ceil(max(ys) + reach) + 1)
    return (left, top, right, bottom) if left < right and top < bottom else None


def _union(box: Box | None, other: Box | None) -> Box | None:
    if box is None or other is None:
        return box or other
    return (
        min(box[0], other[0]),
        min(box[1], other[1]),
        max(box[2], other[2]),
        max(box[3], other[3]),
    )


def _brush_box(stroke: Stroke, scale: float, shape: tuple[int, int]) -> tuple[Box | None, float]:
    """The box a brush ``stroke`` drawn at ``scale`` paints within an image of ``shape``
    (None: outside it), and the width of its soft edge in pixels."""
    feather = max(1.0, BRUSH_FEATHER * stroke.radius * scale)
    return _stroke_box(stroke, scale, shape, math.ceil(2 * feather)), feather


def _coverage(stroke: Stroke, scale: float, feather: float, shape: tuple[int, int]) -> np.ndarray:
    """How much of each pixel of a ``shape`` box ``stroke`` (in the box's coordinates, drawn
    at ``scale``) covers, 0–1, its edge softened over ``feather`` pixels. A soft edge is
    smooth at the scale of its width, so it is worked out where it is at most
    ``BRUSH_SOFT_EDGE_SAMPLES`` samples wide and stretched to the box: a wide brush costs
    about what a narrow one does per pixel it paints."""
    fine = min(1.0, BRUSH_SOFT_EDGE_SAMPLES / feather)
    height, width = shape
    solid = np.zeros((math.ceil(height * fine), math.ceil(width * fine)), dtype=np.uint8)
    # OpenCV draws with pixel centres at whole coordinates: shifted by this, the stroke's
    # centre line and outline land where they would at full size.
    shift = (0.5 - 0.5 / fine) / scale
    small = Stroke(
        stroke.tool, stroke.radius + shift, tuple((x + shift, y + shift) for x, y in stroke.points)
    )
    _draw(solid, small, 255, scale * fine)
    soft = cv2.GaussianBlur(solid, (0, 0), feather * fine / 2).astype(np.float32) / 255.0
    if fine == 1.0:
        return soft
    # Each box pixel's centre, in the small map's pixels.
    offset = 0.5 * fine - 0.5
    to_small = np.array([[fine, 0.0, offset], [0.0, fine, offset]])
    return cv2.warpAffine(
        soft,
        to_small,
        (width, height),
        flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )


def _paint_brush(
    photo: np.ndarray, foreground: np.ndarray, alpha: np.ndarray, stroke: Stroke, scale: float
) -> Box | None:
    """Erase (alpha → 0) or restore (alpha → 255, the photo's own colours) along ``stroke``,
    in place, with a soft edge; returns the box it touched."""
    box, feather = _brush_box(stroke, scale, alpha.shape)
    if box is None:
        return None
    left, top, right, bottom = box
    local = Stroke(
        stroke.tool,
        max(0.5, stroke.radius - BRUSH_FEATHER * stroke.radius / 2),
        tuple((x - left / scale, y - top / scale) for x, y in stroke.points),
    )
    coverage = _coverage(local, scale, feather, (bottom - top, right - left))
    region = alpha[top:bottom, left:right]
    # OpenCV's per-pixel arithmetic: a whole-photo stroke at 12 MP is one pass, not several.
    if stroke.tool == "erase":
        region[...] = cv2.multiply(region, 1.0 - coverage, dtype=cv2.CV_8U)
    else:
        np.maximum(region, cv2.convertScaleAbs(coverage, alpha=255.0), out=region)
        colours = foreground[top:bottom, left:right]
        photo_box = photo[top:bottom, left:right]
        colours[...] = cv2.blendLinear(photo_box, colours, coverage, 1.0 - coverage)
    return box


def _remove_objects(
    alpha: np.ndarray, removals: Sequence[ObjectRemoval], scale: float
) -> Box | None:
    """Clear, in place, each object of ``alpha`` under one of ``removals`` with its soft rim
    (none where no object is: already removed, or the result changed); returns the box it
    touched. One labelling serves them all: clearing an object leaves the others' labels."""
    if not removals:
        return None
    height, width = alpha.shape
    solid = (alpha >= OBJECT_LEVEL).astype(np.uint8)
    _, labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    rim = max(2, round(0.004 * max(height, width)))
    box: Box | None = None
    cleared: set[int] = set()
    for removal in removals:
        x = min(width - 1, max(0, int(removal.point[0] * scale)))
        y = min(height - 1, max(0, int(removal.point[1] * scale)))
        label = int(labels[y, x])
        if not solid[y, x] or label in cleared:
            continue
        cleared.add(label)
        x0, y0, w, h = (int(v) for v in stats[label, :4])
        left, top = max(0, x0 - rim), max(0, y0 - rim)
        right, bottom = min(width, x0 + w + rim), min(height, y0 + h + rim)
        inside = (labels[top:bottom, left:right] == label).astype(np.uint8)
        grown = cv2.dilate(inside, _disk(rim))
        region = alpha[top:bottom, left:right]
        region[inside.astype(bool) | (grown.astype(bool) & (region < OBJECT_LEVEL))] = 0
        box = _union(box, (left, top, right, bottom))
    return box


@dataclass
class Edited(Refined):
    # The cut-out's parts before object removals, each flagged if removed; filled only when
    # apply_edits is asked for them.
    objects: list[CutoutObject] = field(default_factory=list)


def apply_edits(
    photo: np.ndarray,
    foreground: np.ndarray,
    alpha: np.ndarray,
    edits: Sequence[Edit],
    scale: float = 1.0,
    *,
    options: HintOptions | None = None,
    with_objects: bool = False,
) -> Edited:
    """The cut-out after ``edits`` (full-resolution coordinates, drawn at ``scale``: the
    size of these planes over the full resolution's) on the automatic ``alpha``."""
    marks = [e for e in edits if isinstance(e, Stroke) and e.tool in SMART_TOOLS]
    if marks:
        hints = hint_map(marks, alpha.shape, scale)
        refined = apply_hints(photo, foreground, alpha, hints, options or HintOptions())
    else:
        refined = Refined(alpha=alpha, foreground=foreground, box=None)
    if len(marks) == len(edits):
        objects = find_objects(refined.alpha, scale) if with_objects else []
        return Edited(refined.alpha, refined.foreground, refined.box, objects)
    # Brushes and object removals paint in place: on copies, never the caller's planes.
    new_alpha = refined.alpha.copy() if refined.alpha is alpha else refined.alpha
    new_colours = refined.foreground
    box = refined.box
    for edit in edits:
        if isinstance(edit, Stroke) and edit.tool in BRUSH_TOOLS:
            if edit.tool == "restore" and new_colours is foreground:
                new_colours = foreground.copy()
            box = _union(box, _paint_brush(photo, new_colours, new_alpha, edit, scale))
    removals = [edit for edit in edits if isinstance(edit, ObjectRemoval)]
    objects = find_objects(new_alpha, scale, removals) if with_objects else []
    box = _union(box, _remove_objects(new_alpha, removals, scale))
    return Edited(new_alpha, new_colours, box, objects)


def find_objects(
    alpha: np.ndarray,
    scale: float = 1.0,
    removals: Sequence[ObjectRemoval] = (),
    limit: int = 12,
) -> list[CutoutObject]:
    """The separate parts of the cut-out ``alpha`` (drawn at ``scale`` of full resolution),
    largest first, at most ``limit``, in full-resolution coordinates; those under one of
    ``removals`` are flagged removed."""
    solid = (alpha >= OBJECT_LEVEL).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(solid, connectivity=8)
    if count <= 1:
        return []
    areas = stats[1:, cv2.CC_STAT_AREA]
    order = np.argsort(-areas, kind="stable")[:limit]
    smallest = max(1, OBJECT_MIN_SHARE * int(areas.max()))
    height, width = alpha.shape
    removed = {
        int(labels[min(height - 1, int(y * scale)), min(width - 1, int(x * scale))])
        for x, y in (removal.point for removal in removals)
    }
    found = []
    for index in order:
        if areas[index] < smallest:
            break
        label = int(index) + 1
        left, top, w, h = (int(v) for v in stats[label, :4])
        inside = np.pad((labels[top : top + h, left : left + w] == label).astype(np.uint8), 1)
        depth = cv2.distanceTransform(inside, cv2.DIST_L2, 3)
        y, x = np.unravel_index(int(np.argmax(depth)), depth.shape)
        found.append(
            CutoutObject(
                box=(
                    math.floor(left / scale),
                    math.floor(top / scale),
                    math.ceil((left + w) / scale),
                    math.ceil((top + h) / scale),
                ),
                area=round(int(areas[index]) / (scale * scale)),
                point=(round((left + x - 1 + 0.5) / scale), round((top + y - 1 + 0.5) / scale)),
                removed=label in removed,
            )
        )
    return found
