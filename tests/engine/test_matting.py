"""The matting stage on its own: the band it solves and what happens when the solve fails."""

from __future__ import annotations

import numpy as np
import pytest

from bgremover.engine import matting


def _soft_disc(size: int = 96) -> tuple[np.ndarray, np.ndarray]:
    """A photo of a red disc on blue and a map whose edge is a few pixels soft."""
    yy, xx = np.mgrid[:size, :size]
    distance = np.hypot(yy - size / 2, xx - size / 2)
    prob = np.clip((size / 3 - distance) / 4 + 0.5, 0, 1).astype(np.float32)
    inside = (distance < size / 3)[..., None]
    photo = np.where(inside, np.array([200, 40, 30], np.uint8), np.array([20, 60, 180], np.uint8))
    return photo.astype(np.uint8), prob


def test_trimap_marks_a_band_around_the_contour():
    _, prob = _soft_disc()
    trimap = matting.make_trimap(prob, 3)
    assert set(np.unique(trimap)) == {0, 128, 255}
    assert trimap[48, 48] == 255 and trimap[0, 0] == 0
    unknown = trimap == 128
    # Every soft pixel of the map is in the band, and the band is no wider than asked.
    assert unknown[(prob > 0.05) & (prob < 0.95)].all()
    yy, xx = np.mgrid[:96, :96]
    assert (np.abs(np.hypot(yy - 48, xx - 48)[unknown] - 32) <= 3 + 1.5).all()


def test_the_solved_band_follows_the_photos_edge():
    photo, prob = _soft_disc()
    matte = matting.estimate_matte(photo, prob)
    assert matte.alpha.shape == prob.shape and matte.foreground.shape == photo.shape
    # The photo's edge is hard, so half of the solved matte pulls the soft map towards 0 or 1.
    band = matting.make_trimap(prob, matting.band_radius(prob.shape)) == 128
    assert np.abs(matte.alpha[band] - 0.5).mean() > np.abs(prob[band] - 0.5).mean()


def test_a_solve_that_does_not_converge_keeps_the_map(monkeypatch: pytest.MonkeyPatch):
    photo, prob = _soft_disc()
    monkeypatch.setattr(matting, "SOLVER_MAX_ITERATIONS", 1)
    matte = matting.estimate_matte(photo, prob)
    np.testing.assert_allclose(matte.alpha, prob, atol=1e-6)
    assert matte.foreground.shape == photo.shape
