"""The second look: closer at small subjects (where subject_crop looks, how the maps fuse),
wider at large ones, none in between."""

from __future__ import annotations

import cv2
import numpy as np
import pytest

from bgremover.engine.segment import (
    FUSED_SIDE,
    WIDE_MIN_AREA,
    WIDE_SIZE,
    ZOOM_MARGIN,
    Segmenter,
    predict_with_second_look,
    subject_crop,
)
from bgremover.engine.weights_loader import load_model


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


def _disc_photo(shape: tuple[int, int], radius: int) -> np.ndarray:
    """A red disc of ``radius`` in the middle of a grey photo of ``shape``."""
    h, w = shape
    yy, xx = np.mgrid[:h, :w]
    photo = np.full((h, w, 3), 128, np.uint8)
    photo[(yy - h // 2) ** 2 + (xx - w // 2) ** 2 < radius**2] = (220, 30, 30)
    return photo


@pytest.fixture(scope="module")
def segmenter(u2netp_weights) -> Segmenter:
    return Segmenter(load_model(None, path=u2netp_weights))


def test_a_small_subject_gets_a_closer_look_fused_in(segmenter):
    photo = _disc_photo((600, 800), 70)
    first = segmenter.predict([photo])[0]
    assert subject_crop(first, photo.shape[:2]) is not None
    fused = predict_with_second_look(segmenter, photo)
    assert fused.shape == (480, FUSED_SIDE)
    assert fused[240, 320] > 0.5 and fused[20, 20] < 0.5


def test_a_large_subject_gets_a_wider_look_averaged_in(segmenter):
    photo = _disc_photo((300, 300), 140)
    first = segmenter.predict([photo])[0]
    assert first.mean() >= WIDE_MIN_AREA
    wide = segmenter.predict([photo], size=WIDE_SIZE)[0]
    assert wide.shape == (WIDE_SIZE, WIDE_SIZE)
    expected = (first + cv2.resize(wide, (320, 320), interpolation=cv2.INTER_LINEAR)) / 2
    np.testing.assert_allclose(predict_with_second_look(segmenter, photo), expected, atol=1e-6)


def test_a_middling_subject_keeps_the_first_map(segmenter):
    photo = _disc_photo((300, 400), 95)
    first = segmenter.predict([photo])[0]
    assert subject_crop(first, photo.shape[:2]) is None
    assert first.mean() < WIDE_MIN_AREA
    np.testing.assert_array_equal(predict_with_second_look(segmenter, photo), first)
