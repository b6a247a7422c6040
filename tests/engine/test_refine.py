"""Clean-up, guided upsampling and the contrast curve on synthetic maps and photos."""

from __future__ import annotations

import cv2
import numpy as np

from bgremover.engine.refine import (
    MIDPOINT_RANGE,
    clean_mask,
    edge_tiles,
    otsu_midpoint,
    sharpen,
    upsample_guided,
)


def _disc(shape: tuple[int, int], centre: tuple[int, int], radius: int) -> np.ndarray:
    out = np.zeros(shape, np.uint8)
    cv2.circle(out, centre, radius, 1, -1)
    return out.astype(bool)


def test_specks_go_but_a_confident_second_subject_and_a_real_hole_stay():
    prob = np.zeros((320, 320), np.float32)
    subject = _disc(prob.shape, (120, 160), 80)
    second = _disc(prob.shape, (270, 60), 14)  # small, far away, but certain
    speck = _disc(prob.shape, (280, 280), 3)  # tiny and unsure
    real_hole = _disc(prob.shape, (120, 160), 25)  # a big gap inside the subject
    pinhole = _disc(prob.shape, (80, 120), 1)  # a few pixels missing
    prob[subject] = 0.97
    prob[real_hole] = 0.02
    prob[pinhole] = 0.1
    prob[second] = 0.95
    prob[speck] = 0.6
    cleaned = clean_mask(prob)
    assert cleaned[speck].max() == 0.0
    assert cleaned[second].min() == np.float32(0.95)
    assert cleaned[real_hole].max() < 0.5
    assert cleaned[pinhole].min() == 1.0


def test_clean_mask_leaves_an_empty_map_alone():
    prob = np.full((64, 64), 0.1, np.float32)
    assert np.array_equal(clean_mask(prob), prob)


def test_sharpen_keeps_zero_half_and_one_and_steepens_between():
    prob = np.array([0.0, 0.3, 0.5, 0.7, 1.0], np.float32)
    out = sharpen(prob, 12.0)
    assert out[0] == 0.0 and out[-1] == 1.0 and abs(out[2] - 0.5) < 1e-6
    assert out[1] < 0.3 and out[3] > 0.7
    assert np.array_equal(sharpen(prob, 0.0), prob)


def test_sharpen_centres_its_curve_on_the_midpoint_it_is_given():
    prob = np.array([0.0, 0.25, 0.4, 0.45, 0.55, 1.0], np.float32)
    out = sharpen(prob, 8.0, midpoint=0.4)
    assert out[0] == 0.0 and out[-1] == 1.0 and abs(out[2] - 0.5) < 0.05
    assert out[1] < 0.25 and out[3] > 0.5 and out[4] > 0.55
    assert sharpen(prob, 8.0)[3] < 0.45  # centred on 0.5 the same value falls


def test_otsu_midpoint_finds_an_unsure_maps_own_split():
    # An unsure subject at 0.35 over a background at 0.05: its split is well below 0.5.
    prob = np.full((100, 100), 0.05, np.float32)
    prob[30:70, 30:70] = 0.35
    assert 0.05 < otsu_midpoint(prob) < 0.35
    assert sharpen(prob, 6.0, otsu_midpoint(prob))[50, 50] > 0.5


def test_otsu_midpoint_never_lets_faint_haze_become_the_subject():
    prob = np.zeros((100, 100), np.float32)
    prob[40:60, 40:60] = 0.08
    assert otsu_midpoint(prob) == MIDPOINT_RANGE[0]
    assert sharpen(prob, 6.0, otsu_midpoint(prob)).max() < 0.2  # stays background


def test_guided_upsampling_follows_the_photos_edge_not_the_coarse_grid():
    # A photo whose subject edge sits between two pixels of the coarse map's grid.
    photo = np.zeros((1200, 1600, 3), np.uint8)
    photo[:, :803] = (220, 40, 40)
    photo[:, 803:] = (30, 90, 200)
    coarse = np.zeros((40, 40), np.float32)
    coarse[:, :20] = 1.0
    fine = upsample_guided(coarse, photo)
    assert fine.shape == (1200, 1600)
    plain = cv2.resize(coarse, (1600, 1200), interpolation=cv2.INTER_LINEAR)
    row = 600
    assert fine[row, 760] > 0.9 and fine[row, 846] < 0.1
    # The plain resize smears the edge over tens of pixels; the guided one snaps to it.
    assert abs(fine[row, 795] - 1.0) < abs(plain[row, 795] - 1.0)
    assert np.abs(fine[:, :700] - 1).max() < 1e-3 and fine[:, 900:].max() < 1e-3


def test_only_tiles_near_the_edge_are_worked_on():
    edge = np.zeros((100, 100), bool)
    edge[50, 50] = True
    tiles = edge_tiles(edge, (4000, 4000), tile=256)
    assert 1 <= len(tiles) <= 16  # the edge's tile and its neighbours, not the whole grid
    rows = {t[0].start for t in tiles}
    assert min(rows) >= 1536 and max(rows) <= 2304
