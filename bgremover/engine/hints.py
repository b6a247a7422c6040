"""Smart marks: keep/remove hints that a person paints on the photo, followed by the engine.

``apply_hints`` takes the automatic cut-out and every mark so far (it keeps no state: undo is
a call with fewer marks) and returns the corrected alpha. Each mark is spread to what belongs
with it by a graph cut (OpenCV's GrabCut, initialised from the automatic mask) inside the
mark's reach; marked pixels are hard constraints, everything outside the reach keeps its
automatic label and so anchors the colour models (the cut sees a margin of such context
around the reach). Marks whose reaches do not meet get a cut (and colour models) of their
own, so a mark cannot undo a distant mark's spread. A change is kept only where it is
connected to a mark that asks for it (a keep mark can only add subject, a remove mark only
take it away), so pixels no mark can affect keep the automatic alpha exactly. The new edges
are then matted (matting.estimate_matte: closed-form solve, guided upsampling, foreground
colours), and only the changed pixels and a band around them take the new values. The
spreading runs on crops around the marks at a bounded working resolution, so a mark costs
about the same on any photo size. (Measurements and the methods tried: docs/decisions.md,
"Smart marks (hints)".)
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np

from bgremover.engine.compose import subject_box
from bgremover.engine.errors import OptionsError
from bgremover.engine.matting import _disk, estimate_matte
from bgremover.engine.refine import working_size

KEEP, REMOVE, NO_HINT = 255, 0, 128

# GrabCut's rounds of re-fitting its colour models.
GRABCUT_ITERATIONS = 3
# Longer side of the map the reach is measured on (a distance transform; exact enough).
REACH_MAP_SIDE = 512


@dataclass(frozen=True)
class HintOptions:
    reach: float = 0.1  # how far a mark can change the cut-out, as a share of the diagonal
    working_side: int = 384  # longer side of the crop around the marks for the graph cut
    matting_side: int = 768  # longer side of the matting solve along the new edges
    edge_band: float = 0.01  # soft band around changed regions, share of the crop's side
    # Context around a group's reach that its cut sees with the automatic labels fixed (so the
    # colour models learn what surrounds the reach), share of the diagonal.
    context: float = 0.1


@dataclass
class Refined:
    alpha: np.ndarray  # H×W uint8, the new alpha
    foreground: np.ndarray  # H×W×3 uint8, colours (decontaminated where new soft edges appear)
    # left, top, right, bottom of the pixels whose alpha or colour changed; None: none did
    box: tuple[int, int, int, int] | None


def check_inputs(
    photo: np.ndarray, foreground: np.ndarray, alpha: np.ndarray, hints: np.ndarray
) -> None:
    """OptionsError unless the four planes are uint8 arrays of the photo's size."""
    for name, array, ndim in (
        ("photo", photo, 3),
        ("foreground", foreground, 3),
        ("alpha", alpha, 2),
        ("hint map", hints, 2),
    ):
        if not isinstance(array, np.ndarray) or array.dtype != np.uint8 or array.ndim != ndim:
            kind = "an H×W×3 colour" if ndim == 3 else "an H×W single-channel"
            raise OptionsError(f"The {name} must be {kind} 8-bit image.")
        if ndim == 3 and array.shape[2] != 3:
            raise OptionsError(f"The {name} must have three colour channels.")
        if array.shape[:2] != photo.shape[:2]:
            raise OptionsError(
                f"The {name} is {array.shape[1]}×{array.shape[0]} but the photo is "
                f"{photo.shape[1]}×{photo.shape[0]}."
            )


def _resize_mask(mask: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """``mask`` (bool) at ``size`` (width, height): set where any of its pixels is set."""
    return cv2.resize(mask.view(np.uint8), size, interpolation=cv2.INTER_AREA) > 0


def _bounds(mask: np.ndarray) -> tuple[slice, slice]:
    """The rows and columns of the smallest box holding every set pixel of ``mask``."""
    left, top, right, bottom = subject_box(mask, 0.0)
    return slice(top, bottom), slice(left, right)


def reach_of(marked: np.ndarray, reach: int) -> tuple[np.ndarray, tuple[slice, slice]]:
    """The pixels within ``reach`` pixels of a mark, and the crop that holds them."""
    h, w = marked.shape
    size = working_size((h, w), REACH_MAP_SIDE)
    small = _resize_mask(marked, size)
    distance = cv2.distanceTransform((~small).view(np.uint8), cv2.DIST_L2, 3)
    within = distance <= reach * size[0] / w
    near = cv2.resize(within.view(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).view(bool)
    near |= marked
    return near, _bounds(near)


def graph_cut(
    rgb: np.ndarray, was: np.ndarray, keep: np.ndarray, remove: np.ndarray, free: np.ndarray
) -> np.ndarray:
    """Subject (bool) by GrabCut on ``rgb``: marks are fixed, pixels outside ``free`` keep
    their label in ``was``, those inside start from it."""
    mask = np.where(was, cv2.GC_FGD, cv2.GC_BGD).astype(np.uint8)
    mask[free & was] = cv2.GC_PR_FGD
    mask[free & ~was] = cv2.GC_PR_BGD
    mask[keep] = cv2.GC_FGD
    mask[remove] = cv2.GC_BGD
    models = np.zeros((1, 65), np.float64), np.zeros((1, 65), np.float64)
    # GrabCut seeds its colour models by k-means from OpenCV's RNG: a fixed seed makes the
    # same marks give the same result, whatever ran before.
    cv2.setRNGSeed(0)
    try:
        cv2.grabCut(
            cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR),
            mask,
            None,
            *models,
            GRABCUT_ITERATIONS,
            cv2.GC_INIT_WITH_MASK,
        )
    except cv2.error:  # one of the two colour models has too few pixels to fit
        return (was | keep) & ~remove
    return (mask == cv2.GC_FGD) | (mask == cv2.GC_PR_FGD)


def connected_to(changed: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The connected parts of ``changed`` that touch ``seeds``."""
    count, labels = cv2.connectedComponents(changed.view(np.uint8), connectivity=8)
    touched = np.zeros(count, bool)
    touched[labels[seeds & changed]] = True
    touched[0] = False
    return touched[labels]


def spread(
    rgb: np.ndarray,
    alpha: np.ndarray,
    keep: np.ndarray,
    remove: np.ndarray,
    near: np.ndarray,
    options: HintOptions,
    inner: tuple[slice, slice],
) -> tuple[np.ndarray, np.ndarray]:
    """(gained, lost): the subject that the marks within ``near`` add and take away on this
    crop, within its part ``inner`` (the rest is context, whose labels stay)."""
    h, w = alpha.shape
    size = working_size((h, w), options.working_side)
    small_near = _resize_mask(near, size)
    # Other groups' marks in the context lie a reach away from this one's: masked out here.
    small_keep = _resize_mask(keep, size) & small_near
    small_remove = _resize_mask(remove, size) & small_near
    both = small_keep & small_remove  # a keep and a remove mark share a working pixel
    small_keep &= ~both
    small_remove &= ~both
    was = cv2.resize(alpha, size, interpolation=cv2.INTER_AREA) >= 128
    small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    now = graph_cut(small_rgb, was, small_keep, small_remove, small_near)
    gained = connected_to(now & ~was, small_keep)
    lost = connected_to(was & ~now, small_remove)

    def full(mask: np.ndarray) -> np.ndarray:
        return cv2.resize(mask.view(np.uint8), (w, h), interpolation=cv2.INTER_LINEAR)[inner] > 0

    return full(gained), full(lost)


def _with_context(
    part: tuple[slice, slice], crop: tuple[slice, slice], shape: tuple[int, int], margin: int
) -> tuple[tuple[slice, slice], tuple[slice, slice]]:
    """``part`` (a box within ``crop``) widened by ``margin`` on every side within a photo of
    ``shape``, in the photo's coordinates; and where ``part`` lies within that wider box."""
    top, left = crop[0].start + part[0].start, crop[1].start + part[1].start
    bottom, right = crop[0].start + part[0].stop, crop[1].start + part[1].stop
    y0, x0 = max(0, top - margin), max(0, left - margin)
    wide = slice(y0, min(shape[0], bottom + margin)), slice(x0, min(shape[1], right + margin))
    return wide, (slice(top - y0, bottom - y0), slice(left - x0, right - x0))


def _placed(mask: np.ndarray, box: tuple[slice, slice], inner: tuple[slice, slice]) -> np.ndarray:
    """A ``box``-sized mask holding ``mask`` at ``inner``, unset elsewhere."""
    placed = np.zeros((box[0].stop - box[0].start, box[1].stop - box[1].start), bool)
    placed[inner] = mask
    return placed


def _near(mask: np.ndarray, band: int) -> np.ndarray:
    """The pixels within ``band`` pixels of ``mask``. The dilation is skipped when ``mask`` is
    empty (keep-only or remove-only marks): with a wide band on a large crop it is costly."""
    if not mask.any():
        return mask
    return cv2.dilate(mask.view(np.uint8), _disk(band)).view(bool)


def apply_hints(
    photo: np.ndarray,
    foreground: np.ndarray,
    alpha: np.ndarray,
    hints: np.ndarray,
    options: HintOptions = HintOptions(),
) -> Refined:
    """The cut-out (``foreground``, ``alpha``: the automatic result) corrected by ``hints``:
    KEEP (255) marks subject, REMOVE (0) marks background, any other value no mark. Marked
    pixels get the marked value; each mark spreads to what belongs with it, with matted edges;
    what no mark can reach keeps the automatic alpha exactly."""
    check_inputs(photo, foreground, alpha, hints)
    keep, remove = hints == KEEP, hints == REMOVE
    if not (keep.any() or remove.any()):
        return Refined(alpha=alpha, foreground=foreground, box=None)
    near, crop = reach_of(keep | remove, round(options.reach * np.hypot(*alpha.shape)))
    crop_rgb, crop_alpha = photo[crop], alpha[crop]
    crop_keep, crop_remove = keep[crop], remove[crop]
    h, w = crop_alpha.shape
    # Marks whose reaches do not meet are spread apart, so one cannot move the other's
    # colour models.
    count, groups = cv2.connectedComponents(near[crop].view(np.uint8), connectivity=8)
    gained_full, lost_full = crop_keep.copy(), crop_remove.copy()
    margin = round(options.context * np.hypot(*alpha.shape))
    for group in range(1, count):
        mine = groups == group
        part = _bounds(mine)
        wide, inner = _with_context(part, crop, alpha.shape, margin)
        gained, lost = spread(
            photo[wide],
            alpha[wide],
            keep[wide],
            remove[wide],
            _placed(mine[part], wide, inner),
            options,
            inner,
        )
        gained_full[part] |= gained
        lost_full[part] |= lost
    gained_full &= ~crop_remove
    lost_full &= ~crop_keep
    prob = crop_alpha.astype(np.float32) * (1.0 / 255.0)
    prob[gained_full] = 1.0
    prob[lost_full] = 0.0
    band = max(2, round(options.edge_band * max(h, w)))
    near_gained, near_lost = _near(gained_full, band), _near(lost_full, band)
    # The old outline's soft rim goes with the region it bordered: left as it was, a removed
    # region would leave a faint outline behind and a filled one a faint ring inside.
    prob[near_lost & ~near_gained & (prob < 0.5)] = 0.0
    prob[near_gained & ~near_lost & (prob >= 0.5)] = 1.0
    touched = near_gained | near_lost
    matte = estimate_matte(crop_rgb, prob, side=options.matting_side)

    crop_new = crop_alpha.copy()
    crop_new[touched] = cv2.convertScaleAbs(matte.alpha, alpha=255.0)[touched]
    crop_new[crop_keep] = 255
    crop_new[crop_remove] = 0
    crop_colours = foreground[crop].copy()
    crop_colours[touched] = matte.foreground[touched]
    changed = (crop_new != crop_alpha) | (crop_colours != foreground[crop]).any(axis=2)
    if not changed.any():
        return Refined(alpha=alpha, foreground=foreground, box=None)
    # Whole-image copies only once something changed, and only the crop is written.
    new_alpha, new_foreground = alpha.copy(), foreground.copy()
    new_alpha[crop] = crop_new
    new_foreground[crop] = crop_colours
    left, top, right, bottom = subject_box(changed, 0.0)
    x0, y0 = crop[1].start, crop[0].start
    box = (x0 + left, y0 + top, x0 + right, y0 + bottom)
    return Refined(alpha=new_alpha, foreground=new_foreground, box=box)
