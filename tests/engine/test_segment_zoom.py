"""The second look at small subjects: where subject_crop looks, and how predict_zoomed fuses."""

from __future__ import annotations

import numpy as np
import pytest

from bgremover.engine.segment import (
    FUSED_SIDE,
    ZOOM_MARGIN,
    Segmenter,
    predict_zoomed,
    subject_crop,
)
from bgremover.engine.weights import load_model


def _map_with_box(rows: slice, cols: slice) -> np.ndarray:
    prob = np.zeros((320, 320), np.float32)
    prob[rows, cols] = 0.9
    return prob


def test_a_small_subject_gets_its_box_with_margins_in_photo_pixels():
    # Map rows 100..139 and columns 160..199 of a 640×480 photo (2× across, 1.5× down).
    crop = subject_crop(_map_with_box(slice(100, 140), slice(160, 200)), (480, 640))
    assert crop is not None
    rows, cols = crop
    pad_y, pad_x = ZOOM_MARGIN * 40 * 1.5, ZOOM_MARGIN * 40 * 2
    assert (rows.start, rows.stop) == (int(150 - pad_y), int(210 + pad_y))
    assert (cols.start, cols.stop) == (int(320 - pad_x), int(400 + pad_x))


def test_no_second_look_without_a_subject_for_a_large_one_or_for_a_speck():
    assert subject_crop(np.zeros((320, 320), np.float32), (480, 640)) is None
    assert subject_crop(_map_with_box(slice(20, 300), slice(20, 300)), (480, 640)) is None
    assert subject_crop(_map_with_box(slice(150, 153), slice(150, 153)), (480, 640)) is None


@pytest.fixture(scope="module")
def segmenter(u2netp_weights) -> Segmenter:
    return Segmenter(load_model(None, path=u2netp_weights))


def test_predict_zoomed_fuses_a_finer_map_for_a_small_subject(segmenter):
    # A red disc filling a small part of a grey photo: the network finds it, then looks closer.
    yy, xx = np.mgrid[:600, :800]
    photo = np.full((600, 800, 3), 128, np.uint8)
    photo[(yy - 300) ** 2 + (xx - 400) ** 2 < 70**2] = (220, 30, 30)
    first = segmenter.predict([photo])[0]
    assert subject_crop(first, photo.shape[:2]) is not None
    fused = predict_zoomed(segmenter, photo)
    assert fused.shape == (480, FUSED_SIDE)
    assert fused[240, 320] > 0.5 and fused[20, 20] < 0.5


def test_predict_zoomed_keeps_the_single_map_when_the_subject_is_large(segmenter):
    yy, xx = np.mgrid[:300, :400]
    photo = np.full((300, 400, 3), 128, np.uint8)
    photo[(yy - 150) ** 2 + (xx - 200) ** 2 < 140**2] = (220, 30, 30)
    assert predict_zoomed(segmenter, photo).shape == (320, 320)
