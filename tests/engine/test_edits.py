"""engine.edits: checking edit lists, brushes, object removal and the order edits apply in,
on a real photo and its real automatic cut-out."""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from bgremover.engine.edits import (
    BRUSH_FEATHER,
    EditLimits,
    ObjectRemoval,
    Stroke,
    apply_edits,
    edits_as_data,
    find_objects,
    hint_map,
    parse_edits,
)
from bgremover.engine.errors import OptionsError
from bgremover.engine.hints import KEEP, NO_HINT, REMOVE

PHOTO = "ecssd_0070"  # a dog on grass, 400×330


@pytest.fixture(scope="module")
def planes(eval_dir: Path) -> tuple[np.ndarray, np.ndarray]:
    """The photo, and its ground-truth mask as a stand-in automatic alpha (a real matte)."""
    photo = np.asarray(Image.open(eval_dir / "sod" / "images" / f"{PHOTO}.jpg").convert("RGB"))
    alpha = np.asarray(Image.open(eval_dir / "sod" / "masks" / f"{PHOTO}.png").convert("L"))
    return photo, alpha


def test_parse_and_back_round_trips() -> None:
    data = [
        {"tool": "keep", "radius": 8.5, "points": [[10, 20], [30.5, 40]]},
        {"tool": "object", "point": [5, 6]},
        {"tool": "erase", "radius": 3, "points": [[0, 0]]},
    ]
    edits = parse_edits(data, 100, 80)
    assert edits[0] == Stroke("keep", 8.5, ((10.0, 20.0), (30.5, 40.0)))
    assert edits[1] == ObjectRemoval((5.0, 6.0))
    assert parse_edits(edits_as_data(edits), 100, 80) == edits


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"tool": "keep"}, "must be a list"),
        ([{"tool": "keep", "radius": True, "points": [[1, 1]]}], "must be a number"),
        ([{"tool": "keep", "radius": float("nan"), "points": [[1, 1]]}], "must be a number"),
        ([{"tool": "keep", "radius": 500, "points": [[1, 1]]}], "radius must be between"),
        ([{"tool": "keep", "radius": 5, "points": [[106, 1]]}], "outside the 100×80 image"),
        ([{"tool": "object", "point": [101, 1]}], "outside"),
        ([{"tool": "keep", "radius": 5, "points": [[1, 1]] * 3}] * 2, "Too many points"),
        ([{"tool": "keep", "radius": 5, "points": [[1, 1]]}] * 4, "Too many edits"),
        # Each stroke's box (radius and soft edge) covers the whole 100×80 image.
        ([{"tool": "erase", "radius": 40, "points": [[50, 40]]}] * 2, "Too much brushing"),
        ([{"tool": "restore", "radius": 40, "points": [[50, 40]]}] * 2, "Too much brushing"),
    ],
)
def test_bad_edit_lists_are_refused_with_a_reason(data: object, message: str) -> None:
    limits = EditLimits(max_edits=3, max_points_per_stroke=10, max_points=5, max_brush_cover=1.5)
    with pytest.raises(OptionsError, match=message):
        parse_edits(data, 100, 80, limits)


def test_smart_marks_do_not_count_as_brushing() -> None:
    wide_mark = {"tool": "keep", "radius": 40, "points": [[50, 40]]}
    assert len(parse_edits([wide_mark] * 3, 100, 80, EditLimits(max_brush_cover=1.5))) == 3


def test_a_wide_brush_has_the_soft_edge_of_a_full_resolution_blur() -> None:
    # A wide brush's soft edge is worked out below full resolution (so its cost does not
    # grow with its width); it must land where the full-resolution blur would put it.
    side, radius = 600, 200.0
    photo = np.zeros((side, side, 3), np.uint8)
    edited = apply_edits(
        photo,
        photo,
        np.zeros((side, side), np.uint8),
        (Stroke("restore", radius, ((300.0, 300.0),)),),
    )
    solid = np.zeros((side, side), np.uint8)
    cv2.circle(solid, (300, 300), round(radius * (1 - BRUSH_FEATHER / 2)), 255, -1)
    expected = cv2.GaussianBlur(solid, (0, 0), BRUSH_FEATHER * radius / 2)
    assert np.abs(edited.alpha.astype(int) - expected).max() <= 8
    assert edited.alpha[300, 300] == 255 and edited.alpha[300, 0] == 0


def test_hint_map_draws_marks_at_scale_with_later_marks_on_top() -> None:
    marks = [Stroke("keep", 10, ((20, 20), (60, 20))), Stroke("remove", 4, ((40, 20),))]
    hints = hint_map(marks, (40, 50), scale=0.5)
    assert hints[10, 10] == KEEP and hints[10, 30] == KEEP
    assert hints[10, 20] == REMOVE  # the later mark wins where they overlap
    assert hints[30, 10] == NO_HINT


def test_brushes_paint_with_a_soft_edge_and_leave_the_rest(
    planes: tuple[np.ndarray, np.ndarray],
) -> None:
    photo, alpha = planes
    edits = (Stroke("erase", 10, ((200, 170),)), Stroke("restore", 10, ((30, 30),)))
    edited = apply_edits(photo, photo, alpha, edits)
    assert edited.alpha[170, 200] == 0 and edited.alpha[30, 30] == 255
    ring = edited.alpha[170, 200 + 9 : 200 + 16]
    assert ring[0] < ring[-1]  # a ramp, not a step
    assert 0 < ring[3] < alpha[170, 200 + 12] or alpha[170, 212] == 0
    untouched = np.ones(alpha.shape, bool)
    untouched[150:191, 180:221] = untouched[10:51, 10:51] = False
    assert np.array_equal(edited.alpha[untouched], alpha[untouched])
    assert alpha[170, 200] > 200  # the caller's planes are not painted on


def test_brush_order_is_kept_so_the_last_stroke_wins(
    planes: tuple[np.ndarray, np.ndarray],
) -> None:
    photo, alpha = planes
    erase, restore = Stroke("erase", 10, ((200, 170),)), Stroke("restore", 10, ((200, 170),))
    assert apply_edits(photo, photo, alpha, (erase, restore)).alpha[170, 200] == 255
    assert apply_edits(photo, photo, alpha, (restore, erase)).alpha[170, 200] == 0


def test_objects_are_listed_largest_first_and_removed_whole(
    planes: tuple[np.ndarray, np.ndarray],
) -> None:
    photo, alpha = planes
    with_speck = alpha.copy()
    with_speck[5:25, 150:180] = 255  # a stray piece of background kept by mistake
    parts = find_objects(with_speck)
    assert len(parts) == 2 and parts[0].area > parts[1].area
    speck = parts[1]
    assert speck.box == (150, 5, 180, 25) and with_speck[speck.point[1], speck.point[0]] == 255
    edited = apply_edits(photo, photo, with_speck, (ObjectRemoval(speck.point),), with_objects=True)
    assert edited.alpha[0:35, 140:190].max() == 0
    assert np.array_equal(edited.alpha[40:], with_speck[40:])
    assert [part.removed for part in edited.objects] == [False, True]
    half = find_objects(with_speck[::2, ::2].copy(), scale=0.5)
    assert half[1].box == (150, 6, 180, 26)  # full-resolution coordinates


def test_several_removals_each_clear_their_own_object(
    planes: tuple[np.ndarray, np.ndarray],
) -> None:
    photo, alpha = planes
    specks = alpha.copy()
    specks[5:25, 150:180] = specks[300:320, 350:380] = 255  # two stray pieces, apart
    removals = tuple(ObjectRemoval(point) for point in [(160, 10), (360, 310), (165, 15)])
    edited = apply_edits(photo, photo, specks, removals)
    # Both go (a second removal on the first changes nothing), and only they.
    assert edited.alpha[0:35, 140:190].max() == 0 and edited.alpha[290:330, 340:390].max() == 0
    assert np.array_equal(edited.alpha[40:280], specks[40:280])
    assert edited.box is not None and edited.box[1] < 5 and edited.box[3] > 320


def test_no_edits_return_the_inputs() -> None:
    photo = np.zeros((10, 10, 3), np.uint8)
    alpha = np.full((10, 10), 200, np.uint8)
    edited = apply_edits(photo, photo, alpha, ())
    assert edited.alpha is alpha and edited.box is None
