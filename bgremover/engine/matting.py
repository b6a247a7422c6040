"""Stage "matting": soft alpha and clean colours along the subject's edge.

Only the uncertain band around the mask's edge is solved, and always at a bounded working
resolution, so a 24-megapixel photo costs about what a 1-megapixel one does: closed-form
matting (Levin et al. 2008, via pymatting) fills the band; the matte is carried back to full
resolution with guided upsampling, which keeps strands the photo shows. Foreground colours
are then estimated (pymatting's multilevel method) so hair and fur lose the old background's
tint; full-resolution detail is added back on top of the working-size estimate. Holes the
network filled in (background showing through lace or twigs) are found by colour and opened.
The working-size solve can run in a helper process (MattingProcess), which a command-line run
starts early so that pymatting's slow import overlaps its other start-up work.
"""

from __future__ import annotations

import multiprocessing
import os
import threading
from collections.abc import Callable
from dataclasses import dataclass
from multiprocessing.connection import Connection
from typing import NamedTuple

import cv2
import numpy as np

from bgremover.engine.refine import (
    apply_coefficients,
    edge_tiles,
    guided_coefficients,
    sample_tile,
    working_size,
)

# Working resolution (longer side) for the matting solve.
MATTING_SIDE = 1024
# Half-width of the unknown band, as a share of the working image's longer side.
BAND_SHARE = 0.008
# Share of the solved matte in the band's final alpha; the rest is the network's map. The two
# err differently (the solver follows colour, the map follows semantics), so each pixel's share
# follows how far apart the foreground and background colours estimated there are (RGB distance
# in 0..1 units): the solver can only be right where colour tells the two apart. Its share
# rises from MATTE_SHARE_LOW (same colours) to MATTE_SHARE_HIGH (SEPARATION_CLEAR apart or
# more). Development split, mixed bfloat16, against a flat share of 0.5 (itself better than
# the solve alone or the map alone): matting band gradient error 0.151 → 0.144, SAD 16.85 →
# 16.59, MSE 22.36 → 22.28, on both halves; SOD MAE 0.0407 → 0.0412, max F 0.9188 → 0.9178.
# SEPARATION_CLEAR from 0.3 to 0.5, or shares 0.2/0.8 and 0.3/0.9, moved the gradient error
# by 0.001 or less.
MATTE_SHARE_LOW = 0.25
MATTE_SHARE_HIGH = 0.75
SEPARATION_CLEAR = 0.4
# Conjugate-gradient iterations for the solve; with pymatting's incomplete-Cholesky
# preconditioner the development photos converge in a handful.
SOLVER_MAX_ITERATIONS = 500


# Holes in the subject that the network filled in (background seen through lace, twigs,
# between arms): inside the trimap's foreground, where the network is not certain, a pixel
# whose colour is far likelier the background's (histograms of HOLE_BINS levels per channel
# over the trimap's known regions) is marked background, with an unknown ring around it as
# wide as the outline's band (a hole's edge is an edge like the outline's) that the solve
# then refines; the holes take the band's blend of solved matte and map. Development
# split, mixed bfloat16: matting band gradient error 0.177 → 0.156, SAD 17.6 → 17.0, MSE 24.3
# → 23.0 (both halves); SOD MAE 0.0403 → 0.0405, max F 0.9192 → 0.9190, S 0.9089 → 0.9088.
# 16 levels did worse on every one of these; without the certainty bound SOD MAE rose by
# 0.0014; marking the holes unknown only (not background) changed nothing; the solved matte
# alone in the holes (no blend): Grad 0.160. A laxer posterior reaches lower gradient error
# (0.75: 0.149) next to a cliff (0.7: the tassels photo's SAD 71 → 95), so 0.9 stays. The
# ring as wide as the band, against a 1-pixel ring (both with the colour-separation share):
# Grad 0.151 → 0.144, SAD 16.80 → 16.59, MSE 22.85 → 22.28, on both halves; SOD MAE 0.0409 →
# 0.0412. (Tested and dropped: GrabCut's colour models and graph cut to find the holes: SAD
# 17.0 → 15.9 but SOD MAE 0.0405 → 0.0428, max F below target, objects cut open.)
HOLE_BINS = 8
HOLE_POSTERIOR = 0.9
HOLE_MAX_PROB = 0.99


@dataclass
class Matte:
    alpha: np.ndarray  # H×W float32 in 0..1 at full resolution
    foreground: np.ndarray  # H×W×3 uint8 at full resolution, background tint removed


def _disk(radius: int) -> np.ndarray:
    return cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (2 * radius + 1, 2 * radius + 1))


def make_trimap(prob: np.ndarray, radius: int) -> np.ndarray:
    """uint8 trimap (0 background, 128 unknown, 255 foreground): a band of ``radius`` pixels
    each side of the map's 0.5 contour. (Also marking the map's merely uncertain areas as
    unknown let the solver turn the network's semantic mistakes into hard wrong regions:
    on the development matting split SAD rose from 25.0 to 30.0.)"""
    solid = (prob >= 0.5).astype(np.uint8)
    kernel = _disk(max(1, radius))
    trimap = np.full(prob.shape, 128, dtype=np.uint8)
    trimap[cv2.erode(solid, kernel).astype(bool)] = 255
    trimap[~cv2.dilate(solid, kernel).astype(bool)] = 0
    return trimap


def mark_colour_holes(
    trimap: np.ndarray, rgb: np.ndarray, prob: np.ndarray, radius: int
) -> np.ndarray:
    """``trimap`` with the subject's background-coloured holes marked (see HOLE_POSTERIOR),
    each with an unknown ring of ``radius`` pixels; ``rgb`` (uint8) and ``prob`` are the photo
    and the map at the trimap's size."""
    step = 256 // HOLE_BINS
    levels = (rgb // step).astype(np.int32)
    colour = (levels[..., 0] * HOLE_BINS + levels[..., 1]) * HOLE_BINS + levels[..., 2]
    inside, outside = trimap == 255, trimap == 0
    if not inside.any() or not outside.any():
        return trimap
    bins = HOLE_BINS**3
    # Laplace-smoothed colour likelihoods; equal priors.
    foreground = (np.bincount(colour[inside], minlength=bins) + 1.0) / (inside.sum() + bins)
    background = (np.bincount(colour[outside], minlength=bins) + 1.0) / (outside.sum() + bins)
    posterior = background / (foreground + background)
    holes = inside & (posterior[colour] > HOLE_POSTERIOR) & (prob < HOLE_MAX_PROB)
    if not holes.any():
        return trimap
    marked = trimap.copy()
    ring = cv2.dilate(holes.astype(np.uint8), _disk(radius)).astype(bool) & inside
    marked[ring] = 128
    marked[holes] = 0
    return marked


def band_radius(shape: tuple[int, int]) -> int:
    return max(2, round(BAND_SHARE * max(shape)))


def worth_matting(prob: np.ndarray) -> bool:
    """For matting="auto": there is a subject and an edge band to refine."""
    solid = prob >= 0.5
    return bool(solid.any() and not solid.all())


class WorkingMatte(NamedTuple):
    """The solver's result at working size, float32."""

    alpha: np.ndarray  # H×W, 0..1
    foreground: np.ndarray  # H×W×3, 0..1
    separation: np.ndarray  # H×W: distance between estimated foreground and background colour


def solve_working_size(
    small_rgb: np.ndarray, trimap: np.ndarray, small_prob: np.ndarray
) -> WorkingMatte:
    """pymatting's part of the matte, at working size, for the photo ``small_rgb`` (uint8), its
    ``trimap`` and the network's map ``small_prob``. Closed-form alpha fills the band (the map
    stays where the solver does not converge); the multilevel method estimates foreground and
    background colours."""
    # Imported here: pymatting loads its numba kernels on import (about a second), which a
    # run without matting should not pay.
    from pymatting import estimate_alpha_cf, estimate_foreground_ml

    unknown = trimap == 128
    image = small_rgb.astype(np.float64) / 255.0
    alpha = (trimap == 255).astype(np.float64)
    # The solver needs both known regions: a subject thinner than the band leaves none inside.
    if unknown.any() and (trimap == 255).any() and (trimap == 0).any():
        # Solve inside the band's bounding box only (plus the 1-pixel Laplacian window).
        ys, xs = np.nonzero(unknown)
        top, bottom = max(0, ys.min() - 2), min(trimap.shape[0], ys.max() + 3)
        left, right = max(0, xs.min() - 2), min(trimap.shape[1], xs.max() + 3)
        crop_trimap = trimap[top:bottom, left:right].astype(np.float64) / 255.0
        try:
            alpha[top:bottom, left:right] = estimate_alpha_cf(
                image[top:bottom, left:right],
                crop_trimap,
                laplacian_kwargs={"epsilon": 1e-6},
                cg_kwargs={"maxiter": SOLVER_MAX_ITERATIONS},
            )
        except ValueError:
            # The solver did not converge: the band keeps the network's map rather than the
            # whole cut-out failing.
            alpha[unknown] = small_prob[unknown]
    if unknown.size > 1:
        foreground, background = estimate_foreground_ml(
            image, alpha, n_big_iterations=1, return_background=True
        )
    else:  # pymatting's multilevel method divides by zero on a single pixel
        foreground, background = image.copy(), image.copy()
    separation = np.linalg.norm(foreground - background, axis=2)
    return WorkingMatte(
        alpha.astype(np.float32), foreground.astype(np.float32), separation.astype(np.float32)
    )


def matte_share(separation: np.ndarray) -> np.ndarray:
    """The solved matte's share of the final alpha at each pixel (see MATTE_SHARE_LOW)."""
    clear = np.clip(separation * (1.0 / SEPARATION_CLEAR), 0.0, 1.0)
    return (MATTE_SHARE_LOW + (MATTE_SHARE_HIGH - MATTE_SHARE_LOW) * clear).astype(np.float32)


Solver = Callable[[np.ndarray, np.ndarray, np.ndarray], WorkingMatte]


def estimate_matte(
    rgb: np.ndarray,
    prob: np.ndarray,
    *,
    side: int = MATTING_SIDE,
    solver: Solver = solve_working_size,
) -> Matte:
    """Alpha and decontaminated foreground for the full-resolution photo ``rgb`` (H×W×3
    uint8) given the refined full-resolution probability map ``prob`` (H×W float32).
    ``solver`` does the working-size part (solve_working_size, or a MattingProcess).

    Outside the band the map's own values are kept: forcing them to 0/1 there turned the
    network's unsure regions into hard mistakes (development matting split: MSE 43.2 with
    hard values, 36.3 with the map kept; SAD in the unknown band 15.4 → 14.3)."""
    h, w = prob.shape
    size = working_size((h, w), side)
    small_rgb = cv2.resize(rgb, size, interpolation=cv2.INTER_AREA)
    small_prob = cv2.resize(prob, size, interpolation=cv2.INTER_AREA)
    radius = band_radius(small_prob.shape)
    band_trimap = make_trimap(small_prob, radius)
    trimap = mark_colour_holes(band_trimap, small_rgb, small_prob, radius)
    # The solved matte is blended in over the band and the holes' rings, and over the holes.
    blended = (trimap == 128) | ((trimap == 0) & (band_trimap == 255))
    small_alpha, small_fg, separation = solver(small_rgb, trimap, small_prob)
    share = matte_share(separation)

    if (w, h) == size:
        foreground = rgb.copy()
        foreground[blended] = np.clip(small_fg[blended] * 255.0 + 0.5, 0, 255).astype(np.uint8)
        alpha = prob.astype(np.float32, copy=True)
        alpha[blended] += share[blended] * (small_alpha[blended] - alpha[blended])
        return Matte(alpha=alpha, foreground=foreground)
    return _to_full_resolution(rgb, prob, small_rgb, blended, small_alpha, small_fg, share)


def _to_full_resolution(
    rgb: np.ndarray,
    prob: np.ndarray,
    small_rgb: np.ndarray,
    blended: np.ndarray,
    small_alpha: np.ndarray,
    small_fg: np.ndarray,
    share: np.ndarray,
) -> Matte:
    shape = prob.shape
    h, w = shape
    guide = small_rgb.astype(np.float32) / 255.0
    a, b = guided_coefficients(guide, small_alpha, radius=2, eps=1e-5)
    full_blended = cv2.resize(blended.view(np.uint8), (w, h), interpolation=cv2.INTER_NEAREST).view(
        bool
    )
    alpha = prob.astype(np.float32, copy=True)
    foreground = rgb.copy()
    small_rgb_f = small_rgb.astype(np.float32)
    small_fg_f = small_fg * 255.0
    for tile in edge_tiles(blended, shape):
        in_band = full_blended[tile]
        if not in_band.any():
            continue
        tile_alpha = alpha[tile]
        solved = apply_coefficients(a, b, rgb, tile)[in_band]
        tile_share = sample_tile(share, shape, tile)[in_band]
        tile_alpha[in_band] += tile_share * (solved - tile_alpha[in_band])
        # Foreground: the working-size estimate plus the photo's own full-resolution detail
        # (elsewhere the photo's colours are the subject's colours).
        estimate = sample_tile(small_fg_f, shape, tile)
        estimate += rgb[tile].astype(np.float32)
        estimate -= sample_tile(small_rgb_f, shape, tile)
        foreground[tile][in_band] = np.clip(estimate[in_band] + 0.5, 0, 255).astype(np.uint8)
    return Matte(alpha=alpha, foreground=foreground)


class MattingProcess:
    """solve_working_size in a helper process, started before it is needed.

    Importing pymatting loads about thirty compiled numba kernels: a second of one core, which
    a command-line run would otherwise spend after the network. Started first thing, the
    helper does it on the other core while this process imports torch and runs the network.
    Called like solve_working_size; should the helper die, the solve runs in this process."""

    def __init__(self) -> None:
        # A fresh interpreter: a fork would copy torch's threads and locks half-held.
        context = multiprocessing.get_context("spawn")
        self._connection: Connection | None
        self._connection, child_end = context.Pipe()
        self.process = context.Process(
            target=_serve, args=(child_end,), daemon=True, name="bgremover-matting"
        )
        self.process.start()
        child_end.close()  # the helper's end lives in the helper only: it sees EOF when we go
        self._lock = threading.Lock()

    def __call__(
        self, small_rgb: np.ndarray, trimap: np.ndarray, small_prob: np.ndarray
    ) -> WorkingMatte:
        with self._lock:
            if self._connection is not None:
                try:
                    self._connection.send((small_rgb, trimap, small_prob))
                    solved, reply = self._connection.recv()
                except (OSError, EOFError):
                    self.close()
                else:
                    if solved:
                        return reply
                    raise reply
        return solve_working_size(small_rgb, trimap, small_prob)

    def close(self) -> None:
        """Let the helper go (it exits when its end of the pipe closes)."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None


def _serve(connection: Connection) -> None:
    """The helper's loop: solve each request until the parent closes the pipe."""
    import pymatting  # noqa: F401  (the reason for the helper: its kernels load now)

    while True:
        try:
            request = connection.recv()
        except EOFError:
            # The parent is done or gone; nothing to tear down that the OS won't.
            os._exit(0)
        try:
            reply = (True, solve_working_size(*request))
        except Exception as exc:
            reply = (False, exc)
        try:
            connection.send(reply)
        except Exception as exc:  # an exception that does not pickle
            connection.send((False, RuntimeError(f"{type(exc).__name__}: {exc}")))
