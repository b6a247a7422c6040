"""A soft drop shadow under the subject, drawn from its alpha: moved, blurred, faded.

The blur runs at a reduced working size (a Gaussian of sigma ≥ 4 px upscales bilinearly
without visible steps, as the blur background does in compose.py), so a 50 MP canvas costs a
few working-size buffers plus one canvas-size uint8 plane.

The preview (editor/static/editor/preview.js) draws the same shadow with the canvas's
``filter = "blur(σpx)"`` and ``globalAlpha``; keep the geometry below matching it.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import dataclass

import cv2
import numpy as np

from bgremover.engine.errors import OptionsError

_WORKING_SIGMA = 4.0
_MAX_WORKING_SCALE = 0.5


@dataclass(frozen=True)
class Shadow:
    """Sizes are fractions of the subject's longer side on the output, so a shadow looks the
    same at any output size."""

    direction: float = 90.0  # degrees the shadow falls towards: 0 right, 90 down, 180 left
    distance: float = 0.02  # how far it falls
    softness: float = 0.03  # Gaussian sigma of its blur
    opacity: float = 50.0  # 0–100 %

    def __post_init__(self) -> None:
        checks = (
            ("direction", self.direction, -360, 360),
            ("distance", self.distance, 0, 1),
            ("softness", self.softness, 0, 0.5),
            ("opacity", self.opacity, 0, 100),
        )
        for name, value, low, high in checks:
            if not isinstance(value, numbers.Real) or not low <= value <= high:
                raise OptionsError(f"shadow {name} must be from {low} to {high}, got {value!r}")

    def offset(self, subject_size: float) -> tuple[float, float]:
        """(dx, dy) in output pixels for a subject whose longer side is ``subject_size``."""
        angle = math.radians(self.direction)
        reach = self.distance * subject_size
        return reach * math.cos(angle), reach * math.sin(angle)

    def sigma(self, subject_size: float) -> float:
        return self.softness * subject_size


# remove.bg's shadow_type values, all drawn as drop shadows: "drop" a general one, "3D" a
# longer, softer fall for standing products, "car" a short dark one right under the wheels.
SHADOW_TYPES: dict[str, Shadow] = {
    "drop": Shadow(),
    "3d": Shadow(direction=75.0, distance=0.04, softness=0.05, opacity=50.0),
    "car": Shadow(direction=90.0, distance=0.01, softness=0.02, opacity=70.0),
}


def shadow_alpha(alpha: np.ndarray, shadow: Shadow, subject_size: float) -> np.ndarray | None:
    """The shadow's own alpha (H×W uint8) for the subject ``alpha`` on the canvas, or None
    when it would be invisible (opacity 0, or no subject)."""
    if shadow.opacity <= 0 or subject_size <= 0:
        return None
    height, width = alpha.shape
    sigma = shadow.sigma(subject_size)
    dx, dy = shadow.offset(subject_size)
    scale = min(_MAX_WORKING_SCALE, _WORKING_SIGMA / sigma) if sigma > 0 else 1.0
    work_size = (max(1, round(width * scale)), max(1, round(height * scale)))
    # The exact scale of each axis after rounding, so the offset lands where it should.
    sx, sy = work_size[0] / width, work_size[1] / height
    small = alpha if scale == 1 else cv2.resize(alpha, work_size, interpolation=cv2.INTER_AREA)
    move = np.float32([[1, 0, dx * sx], [0, 1, dy * sy]])
    moved = cv2.warpAffine(
        small, move, work_size, flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_CONSTANT
    )
    if sigma > 0:
        moved = cv2.GaussianBlur(moved, (0, 0), sigma * sx, borderType=cv2.BORDER_CONSTANT)
    faded = cv2.convertScaleAbs(moved, alpha=shadow.opacity / 100)
    if scale == 1:
        return faded
    return cv2.resize(faded, (width, height), interpolation=cv2.INTER_LINEAR)
