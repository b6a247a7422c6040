"""Smart marks (engine.hints) on real photos: the automatic cut-out, then the marks a user
would put at the centre of its largest mistake (bench.clicks' simulated user)."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from bench.clicks import iou, mark_radius, next_mark, plain_brush
from bgremover.engine import hints
from bgremover.engine.errors import OptionsError
from bgremover.engine.hints import KEEP, NO_HINT, REMOVE, HintOptions, apply_hints
from bgremover.engine.pipeline import RemovalOptions, remove_background

# Two photos whose largest mistake is, at the time of writing, missed subject (a keep mark)
# and kept background (a remove mark).
MISSED_SUBJECT, KEPT_BACKGROUND = "ecssd_0306", "ecssd_0205"


class Case:
    def __init__(self, eval_dir: Path, weights: Path, stem: str) -> None:
        cutout = remove_background(
            str(eval_dir / "sod/images" / f"{stem}.jpg"), RemovalOptions(model_path=weights)
        )
        self.photo, self.foreground, self.alpha = cutout.original, cutout.foreground, cutout.alpha
        with Image.open(eval_dir / "sod/masks" / f"{stem}.png") as mask:
            self.truth = np.asarray(mask.convert("L")) >= 128

    def first_mark(self) -> tuple[np.ndarray, bool]:
        """The hint map with the simulated user's first mark, and whether it is a keep."""
        row, col, keep = next_mark(self.alpha, self.truth)
        marks = np.full(self.alpha.shape, NO_HINT, np.uint8)
        radius = mark_radius(self.alpha.shape)
        cv2.circle(marks, (col, row), radius, KEEP if keep else REMOVE, thickness=-1)
        return marks, keep


@pytest.fixture(scope="module")
def missed(eval_dir: Path, u2netp_weights: Path) -> Case:
    return Case(eval_dir, u2netp_weights, MISSED_SUBJECT)


@pytest.fixture(scope="module")
def kept(eval_dir: Path, u2netp_weights: Path) -> Case:
    return Case(eval_dir, u2netp_weights, KEPT_BACKGROUND)


def _refine(case: Case, marks: np.ndarray, options: HintOptions | None = None):
    return apply_hints(case.photo, case.foreground, case.alpha, marks, options or HintOptions())


def test_a_keep_mark_on_missed_subject_brings_the_region_in(missed):
    marks, keep = missed.first_mark()
    assert keep, f"{MISSED_SUBJECT}'s largest mistake is no longer missed subject"
    refined = _refine(missed, marks)
    brushed = plain_brush(missed.photo, missed.foreground, missed.alpha, marks)
    before, after = iou(missed.alpha, missed.truth), iou(refined.alpha, missed.truth)
    # The mark spreads well beyond its own disc.
    assert after > iou(brushed, missed.truth) + 0.05
    assert after > before + 0.05


def test_a_remove_mark_on_kept_background_takes_it_away(kept):
    marks, keep = kept.first_mark()
    assert not keep, f"{KEPT_BACKGROUND}'s largest mistake is no longer kept background"
    refined = _refine(kept, marks)
    brushed = plain_brush(kept.photo, kept.foreground, kept.alpha, marks)
    assert iou(refined.alpha, kept.truth) > iou(brushed, kept.truth) + 0.05
    gone = (kept.alpha >= 128) & (refined.alpha < 128)
    assert (~kept.truth[gone]).mean() > 0.9  # what went was background


def _rim(changed: np.ndarray, alpha: np.ndarray, low: int, high: int) -> np.ndarray:
    """The pixels within 4 px of ``changed`` (outside it) whose automatic alpha was soft,
    in [low, high): the old outline's rim."""
    near = cv2.dilate(changed.view(np.uint8), np.ones((9, 9), np.uint8)).view(bool)
    return near & ~changed & (alpha >= low) & (alpha < high)


def test_a_removed_region_leaves_no_faint_outline_behind(kept):
    marks, _ = kept.first_mark()
    refined = _refine(kept, marks)
    gone = (kept.alpha >= 128) & (refined.alpha < 128)
    rim = _rim(gone, kept.alpha, 1, 128)
    assert rim.sum() > 100
    # Before the rim went with its region its mean alpha stayed at 40 of 255.
    assert refined.alpha[rim].mean() < 20


def test_a_filled_region_leaves_no_faint_ring_inside(missed):
    marks, _ = missed.first_mark()
    refined = _refine(missed, marks)
    came = (missed.alpha < 128) & (refined.alpha >= 128)
    rim = _rim(came, missed.alpha, 128, 255)
    assert rim.sum() > 100
    # Before the rim went with its region its mean alpha stayed at 180 of 255.
    assert refined.alpha[rim].mean() > 205


def test_the_same_marks_give_the_same_result_whatever_ran_before(kept):
    marks, _ = kept.first_mark()
    first = _refine(kept, marks).alpha
    cv2.randu(np.zeros((64, 64), np.float32), 0, 1)  # moves OpenCV's random state
    assert (_refine(kept, marks).alpha == first).all()


def test_a_mark_out_of_reach_does_not_move_another_marks_spread(kept):
    marks, _ = kept.first_mark()
    alone = _refine(kept, marks).alpha < 128
    # A keep mark on the subject, as far from the remove mark as the subject goes.
    ys, xs = np.nonzero(kept.alpha == 255)
    row, col = np.nonzero(marks == REMOVE)
    far = np.argmax(np.hypot(ys - row.mean(), xs - col.mean()))
    reach = HintOptions().reach * np.hypot(*marks.shape)
    assert np.hypot(ys[far] - row.mean(), xs[far] - col.mean()) > 2 * reach + 2 * len(row) ** 0.5
    cv2.circle(marks, (int(xs[far]), int(ys[far])), mark_radius(marks.shape), KEEP, -1)
    both = _refine(kept, marks).alpha < 128
    gone_alone, gone_both = alone & (kept.alpha >= 128), both & (kept.alpha >= 128)
    assert gone_alone.sum() > 100
    # The same region goes (up to the matted edge, solved on a larger crop).
    assert (gone_alone & gone_both).sum() / (gone_alone | gone_both).sum() > 0.97


def test_marked_pixels_get_the_marked_value_and_the_colours_stay_valid(missed):
    marks, _ = missed.first_mark()
    # A remove mark on the subject too, far from the keep mark.
    ys, xs = np.nonzero(missed.alpha == 255)
    far = np.argmax(np.hypot(ys - np.nonzero(marks == KEEP)[0].mean(), xs))
    cv2.circle(marks, (int(xs[far]), int(ys[far])), 6, REMOVE, thickness=-1)
    refined = _refine(missed, marks)
    assert (refined.alpha[marks == KEEP] == 255).all()
    assert (refined.alpha[marks == REMOVE] == 0).all()
    assert refined.alpha.dtype == np.uint8 and refined.alpha.shape == missed.alpha.shape
    assert refined.foreground.dtype == np.uint8 and refined.foreground.shape == missed.photo.shape


def test_without_marks_nothing_changes(missed):
    for value in (NO_HINT, 1, 77, 254):
        refined = _refine(missed, np.full(missed.alpha.shape, value, np.uint8))
        assert refined.alpha is missed.alpha and refined.foreground is missed.foreground
        assert refined.box is None


def test_pixels_out_of_the_marks_reach_keep_the_automatic_alpha(missed):
    marks, _ = missed.first_mark()
    options = HintOptions(reach=0.05)
    refined = _refine(missed, marks, options)
    changed = refined.alpha != missed.alpha
    assert changed.any()
    reach = options.reach * np.hypot(*marks.shape)
    distance = cv2.distanceTransform((marks == NO_HINT).view(np.uint8), cv2.DIST_L2, 5)
    assert (distance[changed] <= reach + 2).all()
    left, top, right, bottom = refined.box
    outside = np.ones_like(changed)
    outside[top:bottom, left:right] = False
    assert not changed[outside].any()
    assert (refined.foreground[outside] == missed.foreground[outside]).all()


@pytest.mark.parametrize(
    "broken",
    [
        {"alpha": lambda a: a[:-1]},
        {"alpha": lambda a: a.astype(np.float32)},
        {"hints": lambda h: h[..., None]},
        {"hints": lambda h: h[:, :-3]},
        {"foreground": lambda f: f[..., :2]},
        {"photo": lambda p: p[..., 0]},
    ],
    ids=["alpha-size", "alpha-dtype", "hints-3d", "hints-size", "foreground-channels", "photo"],
)
def test_planes_of_the_wrong_shape_or_type_are_refused(missed, broken):
    marks, _ = missed.first_mark()
    planes = {
        "photo": missed.photo,
        "foreground": missed.foreground,
        "alpha": missed.alpha,
        "hints": marks,
    }
    (name, damage), *_ = broken.items()
    planes[name] = damage(planes[name])
    with pytest.raises(OptionsError, match="must|but the photo is"):
        apply_hints(**planes)


def test_a_mark_on_a_large_photo_is_spread_and_matted_at_bounded_size(missed, monkeypatch):
    scale = 9  # 400×267 → 3600×2403, 8.7 MP
    h, w = missed.alpha.shape

    def big(plane: np.ndarray) -> np.ndarray:
        return cv2.resize(plane, (w * scale, h * scale), interpolation=cv2.INTER_NEAREST)

    marks, _ = missed.first_mark()
    seen: dict[str, tuple] = {}
    graph_cut, estimate_matte = hints.graph_cut, hints.estimate_matte

    def spy_cut(rgb, *args):
        seen["cut"] = rgb.shape
        return graph_cut(rgb, *args)

    def spy_matte(rgb, prob, *, side):
        seen["matte"] = (rgb.shape, side)
        return estimate_matte(rgb, prob, side=side)

    monkeypatch.setattr(hints, "graph_cut", spy_cut)
    monkeypatch.setattr(hints, "estimate_matte", spy_matte)
    options = HintOptions()
    refined = apply_hints(
        big(missed.photo), big(missed.foreground), big(missed.alpha), big(marks), options
    )
    assert max(seen["cut"][:2]) == options.working_side
    crop_shape, side = seen["matte"]
    assert side == options.matting_side
    # The crop is the marks' reach, not the photo.
    diagonal = np.hypot(h * scale, w * scale)
    assert max(crop_shape[:2]) <= 2 * (options.reach * diagonal + mark_radius(marks.shape) * scale)
    assert refined.box is not None


def test_each_cut_sees_a_margin_of_context_around_the_reach(missed, monkeypatch):
    marks, _ = missed.first_mark()
    seen: list[tuple[int, int]] = []
    spread = hints.spread

    def spy(rgb, alpha, keep, remove, reach, options, inner):
        seen.append(rgb.shape[:2])
        # Only the reach is free: the context around it keeps its automatic labels.
        assert reach.sum() < reach.size and not reach[inner].all()
        return spread(rgb, alpha, keep, remove, reach, options, inner)

    monkeypatch.setattr(hints, "spread", spy)
    without = _refine(missed, marks, HintOptions(context=0))
    with_context = _refine(missed, marks, HintOptions(context=0.1))
    (bare, wide) = seen
    h, w = missed.alpha.shape
    margin = round(0.1 * np.hypot(h, w))
    for side in (0, 1):  # widened on both sides, within the photo
        assert bare[side] < wide[side] <= min((h, w)[side], bare[side] + 2 * margin)
    # Context changes the colour models, never what lies out of the marks' reach (and the
    # matted band at its edge).
    options = HintOptions()
    reach = options.reach * np.hypot(h, w) + options.edge_band * max(h, w) + 2
    distance = cv2.distanceTransform((marks == NO_HINT).view(np.uint8), cv2.DIST_L2, 5)
    for refined in (without, with_context):
        changed = refined.alpha != missed.alpha
        assert changed.sum() > 100 and (distance[changed] <= reach).all()
    assert (with_context.alpha != without.alpha).any()
