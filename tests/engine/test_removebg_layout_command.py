"""``manage.py removebg``'s canvas and shadow options, end to end with the real U²-NetP
weights on a real photo, and their refusals (before any work)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from django.core.management.base import CommandError
from PIL import Image

from tests.engine.removebg_support import removebg, small_copies

DOG = "ecssd_0070"


@pytest.fixture
def photo(tmp_path: Path, eval_dir: Path) -> Path:
    return small_copies([eval_dir / "sod" / "images" / f"{DOG}.jpg"], tmp_path / "in", 300)[0]


def run(photo: Path, out_dir: Path, weights: Path, *args: str) -> np.ndarray:
    removebg(photo, "-o", out_dir, "--model-path", weights, "--matting", "off", *args)
    with Image.open(out_dir / f"{photo.stem}.png") as result:
        return np.asarray(result)


def box(alpha: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, width, height) of alpha > 0."""
    rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
    return cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1


def test_square_canvas_scale_position_and_shadow(tmp_path, photo, u2netp_weights):
    with Image.open(photo) as source:
        width, height = source.size
    side = max(width, height)
    plain = run(photo, tmp_path / "plain", u2netp_weights, "--canvas", "square", "--scale", "80%")
    assert plain.shape == (side, side, 4)
    left, top, w, h = box(plain[..., 3])
    # The subject's longer relative side is 80 % of the canvas, and it is centred.
    assert abs(max(w, h) - 0.8 * side) <= 2
    assert abs(left + w / 2 - side / 2) <= 2 and abs(top + h / 2 - side / 2) <= 2

    moved = run(
        photo, tmp_path / "moved", u2netp_weights, "--canvas", "4:5", "--scale", "50%",
        "--position", "0% 100%",
    )  # fmt: skip
    assert (
        moved.shape[0] * 4 == moved.shape[1] * 5
        or abs(moved.shape[0] / moved.shape[1] - 1.25) < 0.01
    )
    left, top, w, h = box(moved[..., 3])
    # Area averaging may fade a faint outermost column or row of the subject to nothing.
    assert left <= 1 and moved.shape[0] - 1 <= top + h <= moved.shape[0]

    shaded = run(
        photo, tmp_path / "shaded", u2netp_weights, "--canvas", "square", "--scale", "80%",
        "--shadow", "--shadow-opacity", "80", "--shadow-direction", "90",
        "--shadow-distance", "5%", "--background", "white",
    )  # fmt: skip
    assert shaded.shape == (side, side, 3)  # opaque: RGB
    assert tuple(shaded[0, 0]) == (255, 255, 255)
    # Just below the subject (opaque in the plain render), the shadow darkens the white.
    alpha = plain[..., 3]
    bottom = top_of_background_below(alpha)
    assert shaded[bottom].mean() < 235
    above = above_subject(alpha)
    assert tuple(shaded[above]) == (255, 255, 255)


def top_of_background_below(alpha: np.ndarray) -> tuple[int, int]:
    """A transparent pixel a few pixels under the subject's lowest opaque pixel, in the column
    where the subject reaches lowest."""
    rows = np.flatnonzero((alpha > 250).any(axis=1))
    row = rows[-1]
    col = int(np.flatnonzero(alpha[row] > 250)[0])
    return min(alpha.shape[0] - 1, row + 4), col


def above_subject(alpha: np.ndarray) -> tuple[int, int]:
    rows = np.flatnonzero(alpha.any(axis=1))
    col = int(np.flatnonzero(alpha[rows[0]])[0])
    return max(0, rows[0] - 10), col


def test_custom_canvas_and_semi_transparent_colour(tmp_path, photo, u2netp_weights):
    out = run(
        photo, tmp_path / "out", u2netp_weights, "--canvas", "200x120", "--background", "0000ff80"
    )
    assert out.shape == (120, 200, 4)
    assert tuple(out[0, 0]) == (0, 0, 255, 128)


def test_size_roi_and_hard_edges(tmp_path, photo, u2netp_weights):
    whole = run(photo, tmp_path / "whole", u2netp_weights)
    small = run(photo, tmp_path / "small", u2netp_weights, "--size", "preview", "--format", "png")
    assert small.shape[0] * small.shape[1] <= whole.shape[0] * whole.shape[1]  # no upscaling
    left_half = run(photo, tmp_path / "left", u2netp_weights, "--roi", "0% 0% 50% 100%")
    half = whole.shape[1] // 2
    assert left_half[:, half + 1 :, 3].max() == 0
    assert np.array_equal(left_half[:, : half - 1, 3], whole[:, : half - 1, 3])
    hard = run(photo, tmp_path / "hard", u2netp_weights, "--hard-edges")
    soft_share = ((whole[..., 3] > 0) & (whole[..., 3] < 255)).mean()
    hard_share = ((hard[..., 3] > 0) & (hard[..., 3] < 255)).mean()
    assert hard_share < soft_share


def test_size_caps_a_large_canvas(tmp_path, photo, u2netp_weights):
    out = run(photo, tmp_path / "out", u2netp_weights, "--canvas", "2000x1500", "--size", "preview")
    assert out.shape[0] * out.shape[1] <= 250_000
    assert abs(out.shape[1] / out.shape[0] - 4 / 3) < 0.01


@pytest.mark.parametrize(
    "args, message",
    [
        (["--canvas", "round"], "--canvas: canvas 'round' is not original, square"),
        (["--canvas", "0x10"], "--canvas: .*above 0"),
        (["--scale", "5%"], "--scale: scale must be from 10 % to 100 %"),
        (["--scale", "huge"], "--scale: .*not a percentage"),
        (["--position", "left"], "--position: .*not a percentage"),
        (["--position", "1% 2% 3%"], "--position: .*one or two"),
        (["--shadow-opacity", "150"], "--shadow-opacity: shadow opacity must be from 0"),
        (["--shadow-softness", "80%"], "--shadow-softness: shadow softness must be from 0"),
        (["--shadow-direction", "north"], "--shadow-direction: .*angle in degrees"),
        # The value names another given option: the refusal still names its own.
        (["--shadow-opacity", "40", "--shadow-softness", "opacity"], "--shadow-softness: "),
        (["--shadow-type", "soft"], "--shadow-type: .*none, drop, 3D or car"),
        (["--output", "mask", "--shadow"], "--shadow has no effect with --output mask"),
        (["--roi", "0 0 10"], "--roi: .*needs 4 values"),
        (["--roi", "50% 0% 10% 100%"], "--roi: .*x2 must be larger"),
        (["--size", "huge"], "--size: .*preview, small, regular"),
        (["--background", "notacolour"], "--background: .*existing image file"),
        (["--background", "#ff000080", "--format", "jpeg"], "JPEG cannot store transparency"),
    ],
)
def test_bad_layout_options_are_refused_before_any_work(tmp_path, photo, args, message):
    out_dir = tmp_path / "out"
    with pytest.raises(CommandError, match=message):
        removebg(photo, "-o", out_dir, *args)
    assert not out_dir.exists()
