"""One entry point for the whole cut-out: ``remove_background`` runs decode → segment →
refine → matting and returns a Cutout; ``render`` composes and encodes a Cutout with any
background, crop and format, so a new background never runs the network again.

Both report progress through an optional callback ``(stage name, fraction done 0..1)`` with
the stage names of STAGES, so the web app and the CLI show the same stages.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, BinaryIO, Literal

import cv2
import numpy as np

from bgremover.engine.compose import Background
from bgremover.engine.encode import encode_image, encode_mask
from bgremover.engine.errors import OptionsError
from bgremover.engine.layout import Canvas, Margin, Roi, alpha_box, apply_roi, harden, plan_layout
from bgremover.engine.matting import Solver, estimate_matte, solve_working_size, worth_matting
from bgremover.engine.preprocess import decode_image
from bgremover.engine.refine import clean_mask, otsu_midpoint, sharpen, upsample_guided
from bgremover.engine.scene import render_scene
from bgremover.engine.shadow import Shadow

if TYPE_CHECKING:
    from bgremover.engine.weights_download import DownloadProgress
    from bgremover.engine.weights_loader import LoadedModel

Progress = Callable[[str, float], None]
STAGES = ("decoding", "segmenting", "refining", "matting", "composing", "encoding")
MattingMode = Literal["auto", "on", "off"]

# Steepness of the contrast curve applied to the upsampled map (see refine.sharpen), centred on
# each map's own subject/background split. Steeper trades MAE (lower) against MSE on soft
# matting ground truth (higher). Development split, mixed bfloat16, with both second looks and
# the half-matted band: 8 → 10 lowered SOD MAE 0.0413 → 0.0403 on both halves and matting SAD
# 18.1 → 17.6, for matting MSE 23.6 → 24.3 and band gradient error 0.173 → 0.177 (12 went
# further the same way). Matting then blends its own alpha into the band.
EDGE_CONTRAST = 10.0


@dataclass(frozen=True)
class RemovalOptions:
    model: str | None = None  # registry name; None: the best one present
    model_path: str | os.PathLike[str] | None = None  # explicit weights file
    model_dir: str | os.PathLike[str] | None = None  # extra directory searched for weights
    matting: MattingMode = "auto"
    flip: bool = True  # test-time augmentation with a mirrored copy
    max_pixels: int | None = 50_000_000
    device: str | None = None  # "auto", "cpu", "cuda", "cuda:1"…; None: auto
    precision: str = "auto"  # "auto", "fp32" or "bf16" (see segment.compute_dtype)
    threads: int | None = None  # torch's CPU threads, set by the first load; None: every CPU
    weights_url: str | None = None  # mirror for a missing model's download; None: official

    def __post_init__(self) -> None:
        if self.matting not in ("auto", "on", "off"):
            raise OptionsError(f"Matting must be auto, on or off, not {self.matting!r}.")


@dataclass(frozen=True)
class RenderOptions:
    """How to render a cut-out; bgremover.engine.render_options reads every field from the
    strings people and the remove.bg API write, and layout.py tells what each one means."""

    background: Background = field(default_factory=Background)
    # None: no crop; a float: a fraction of the subject box's longer side (0.05 = 5 %),
    # clipped to the photo; a Margin: remove.bg's crop_margin (px or %, per side, padded).
    crop_margin: float | Margin | None = None
    output: Literal["cutout", "mask"] = "cutout"  # remove.bg's channels: rgba / alpha
    format: Literal["png", "webp", "jpeg", "zip"] = "png"
    canvas: Canvas = field(default_factory=Canvas)
    scale: float | None = None  # None: original; else 0.1..1
    position: tuple[float, float] | None = None  # None: original; else (x, y) in 0..1
    roi: Roi | None = None  # None: the whole photo
    shadow: Shadow | None = None
    semitransparency: bool = True  # False: harden the alpha (a thin soft edge stays)
    max_pixels: int | None = None  # downscale the output to at most this many pixels

    def __post_init__(self) -> None:
        if self.output not in ("cutout", "mask"):
            raise OptionsError(f"Output must be cutout or mask, not {self.output!r}.")
        if (
            self.crop_margin is not None
            and not isinstance(self.crop_margin, Margin)
            and not 0 <= self.crop_margin <= 1
        ):
            raise OptionsError("The crop margin must be between 0 and 100 %.")
        if self.max_pixels is not None and self.max_pixels < 1:
            raise OptionsError(f"The pixel limit must be at least 1, not {self.max_pixels!r}.")


@dataclass(frozen=True)
class Rendered:
    """An encoded render and what the remove.bg API reports about it: the output's size and
    the foreground's box in it as (top, left, width, height); (0, 0, 0, 0) with no subject."""

    content: bytes
    width: int
    height: int
    foreground_box: tuple[int, int, int, int]


@dataclass
class Cutout:
    foreground: np.ndarray  # H×W×3 uint8, colour-decontaminated along soft edges
    alpha: np.ndarray  # H×W uint8
    original: np.ndarray | None  # H×W×3 uint8, the decoded photo (needed for blur backgrounds)
    icc_profile: bytes | None = None
    notes: list[str] = field(default_factory=list)

    def rgba(self) -> np.ndarray:
        return np.dstack((self.foreground, self.alpha))

    @classmethod
    def from_planes(
        cls,
        foreground: np.ndarray,
        alpha: np.ndarray,
        original: np.ndarray | None = None,
        icc_profile: bytes | None = None,
    ) -> Cutout:
        """A stored cut-out's colour and alpha planes (and, for a blur background, its
        original photo), checked to fit together."""
        size = foreground.shape[:2]
        if (
            foreground.ndim != 3
            or foreground.shape[2] != 3
            or alpha.shape != size
            or (original is not None and original.shape[:2] != size)
        ):
            raise OptionsError("The stored cut-out does not match its original photo.")
        return cls(foreground=foreground, alpha=alpha, original=original, icc_profile=icc_profile)


def _quiet(stage: str, fraction: float) -> None:
    pass


def load_model_for(
    options: RemovalOptions, progress: DownloadProgress | None = None
) -> LoadedModel:
    """The network ``options`` ask for (weights_loader.load_model: cached per process,
    downloaded when missing, with ``progress`` reporting a download)."""
    from bgremover.engine.weights_loader import load_model

    return load_model(
        options.model,
        path=options.model_path,
        model_dir=options.model_dir,
        device=options.device,
        base_url=options.weights_url,
        progress=progress,
        threads=options.threads,
    )


def remove_background(
    source: bytes | str | os.PathLike[str] | BinaryIO,
    options: RemovalOptions = RemovalOptions(),
    progress: Progress | None = None,
    *,
    matting_solver: Solver = solve_working_size,
) -> Cutout:
    """Cut the subject out of the photo ``source`` (bytes, path or binary file).
    ``matting_solver``: where matting's working-size solve runs (see matting.MattingProcess)."""
    # Imported here, not at the top: torch takes seconds to import, and the pages and
    # commands that only re-compose stored results (``render``) never need it.
    from bgremover.engine.segment import predict_with_second_look, segmenter_for

    report = progress or _quiet
    report("decoding", 0.0)
    decoded = decode_image(source, max_pixels=options.max_pixels)
    segmenter = segmenter_for(load_model_for(options), options.precision)

    report("segmenting", 0.1)
    prob = predict_with_second_look(segmenter, decoded.rgb, flip=options.flip)

    report("refining", 0.45)
    cleaned = clean_mask(prob)
    prob = sharpen(upsample_guided(cleaned, decoded.rgb), EDGE_CONTRAST, otsu_midpoint(cleaned))

    foreground = decoded.rgb
    matted = options.matting == "on" or (options.matting == "auto" and worth_matting(prob))
    if matted:
        report("matting", 0.6)
        matte = estimate_matte(decoded.rgb, prob, solver=matting_solver)
        prob, foreground = matte.alpha, matte.foreground

    if decoded.alpha is not None:  # what the source already made transparent stays so
        prob = prob * (decoded.alpha.astype(np.float32) / 255.0)
    # 0..1 → 0..255, rounded and saturated (cv2: one threaded pass instead of numpy's three).
    alpha = cv2.convertScaleAbs(prob, alpha=255.0)
    report("matting" if matted else "refining", 1.0)
    return Cutout(
        foreground=foreground,
        alpha=alpha,
        original=decoded.rgb,
        icc_profile=decoded.icc_profile,
        notes=list(decoded.notes),
    )


def render(
    cutout: Cutout, options: RenderOptions = RenderOptions(), progress: Progress | None = None
) -> bytes:
    """Encode ``cutout`` as ``options`` ask (background, crop, canvas, shadow, format…)."""
    return render_with_info(cutout, options, progress).content


def render_with_info(
    cutout: Cutout, options: RenderOptions = RenderOptions(), progress: Progress | None = None
) -> Rendered:
    """``render``, with the output's size and the foreground's box in it."""
    report = progress or _quiet
    report("composing", 0.0)
    height, width = cutout.alpha.shape
    alpha = apply_roi(cutout.alpha, options.roi)
    subject = alpha_box(alpha)
    if not options.semitransparency:
        alpha = harden(alpha, subject)
    plan = plan_layout(
        width,
        height,
        subject,
        crop_margin=options.crop_margin,
        canvas=options.canvas,
        scale=options.scale,
        position=options.position,
        max_pixels=options.max_pixels,
    )
    mask_only = options.output == "mask"
    scene = render_scene(
        cutout.foreground,
        alpha,
        cutout.original,
        options.background,
        plan,
        options.shadow,
        subject=subject,
        mask_only=mask_only,
    )
    report("encoding", 0.5)
    if scene.pixels is None:
        data = encode_mask(scene.subject_alpha)
    else:
        data = encode_image(scene.pixels, options.format, icc_profile=cutout.icc_profile)
    placed = scene.placed
    box = (0, 0, 0, 0)
    if placed is not None:
        box = (placed[1], placed[0], placed[2] - placed[0], placed[3] - placed[1])
    report("encoding", 1.0)
    return Rendered(data, plan.width, plan.height, box)


def warm_up(options: RemovalOptions = RemovalOptions()) -> None:
    """Load the model, build its optimised forward pass and compile the matting kernels now,
    so that the first real job of a long-running process does not pay for them."""
    yy, xx = np.mgrid[:96, :96]
    disc = ((yy - 48) ** 2 + (xx - 48) ** 2 < 30**2)[..., None]
    photo = np.where(disc, np.array([200, 60, 40], np.uint8), np.array([30, 90, 160], np.uint8))
    warm = replace(options, matting="on", max_pixels=RemovalOptions.max_pixels)
    remove_background(encode_image(photo.astype(np.uint8), "png"), warm)
