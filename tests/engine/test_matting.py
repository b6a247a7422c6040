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


def test_the_solved_matte_weighs_most_where_colours_tell_subject_from_background():
    clear = matting.SEPARATION_CLEAR
    share = matting.matte_share(np.array([0.0, clear / 2, clear, 1.7], np.float32))
    low, high = matting.MATTE_SHARE_LOW, matting.MATTE_SHARE_HIGH
    np.testing.assert_allclose(share, [low, (low + high) / 2, high, high], rtol=1e-6)
    assert 0 < low < high < 1  # the map always keeps a say, and so does the solve


def test_the_solve_measures_how_far_apart_subject_and_background_colours_are():
    photo, prob = _soft_disc(128)
    # Left of the middle the background is the subject's own red: colour cannot separate them.
    photo[:, :64][(prob[:, :64] < 0.5)] = (200, 40, 30)
    trimap = matting.make_trimap(prob, 4)
    separation = matting.solve_working_size(photo, trimap, prob).separation
    band = trimap == 128
    blue_side, red_side = band.copy(), band.copy()
    blue_side[:, :80] = False
    red_side[:, 48:] = False
    assert np.median(separation[blue_side]) > matting.SEPARATION_CLEAR
    assert np.median(separation[red_side]) < 0.1


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


@pytest.fixture
def helper():
    process = matting.MattingProcess()
    yield process
    process.close()
    process.process.join(timeout=30)


def _working_size_inputs() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    photo, prob = _soft_disc(128)
    noise = np.random.default_rng(3).integers(-25, 25, photo.shape)
    photo = np.clip(photo.astype(int) + noise, 0, 255).astype(np.uint8)
    return photo, matting.make_trimap(prob, 4), prob


def test_the_helper_process_solves_as_this_process_does(helper):
    photo, trimap, prob = _working_size_inputs()
    solved = helper(photo, trimap, prob)
    expected = matting.solve_working_size(photo, trimap, prob)
    for field in matting.WorkingMatte._fields:
        np.testing.assert_array_equal(getattr(solved, field), getattr(expected, field))
    alpha = solved.alpha
    band = trimap == 128
    assert 0.05 < alpha[band].mean() < 0.95  # a real solve, not the trimap back
    # A whole matte through the helper is the matte of this process.
    direct = matting.estimate_matte(*_soft_disc())
    via_helper = matting.estimate_matte(*_soft_disc(), solver=helper)
    np.testing.assert_array_equal(via_helper.alpha, direct.alpha)
    np.testing.assert_array_equal(via_helper.foreground, direct.foreground)


def test_the_helpers_errors_are_raised_here(helper):
    photo, trimap, prob = _working_size_inputs()
    two_channels = photo[..., :2]
    with pytest.raises(Exception) as here:  # noqa: B017 (whatever pymatting raises)
        matting.solve_working_size(two_channels, trimap, prob)
    with pytest.raises(here.type):
        helper(two_channels, trimap, prob)
    # and it goes on serving
    assert helper(photo, trimap, prob)[0].shape == trimap.shape


def test_without_its_helper_the_solve_runs_here(helper):
    helper.process.kill()
    helper.process.join(timeout=30)
    photo, trimap, prob = _working_size_inputs()
    np.testing.assert_array_equal(
        helper(photo, trimap, prob).alpha, matting.solve_working_size(photo, trimap, prob).alpha
    )


def test_the_helper_ends_when_let_go():
    process = matting.MattingProcess()
    photo, trimap, prob = _working_size_inputs()
    process(photo, trimap, prob)
    process.close()
    process.process.join(timeout=30)
    assert process.process.exitcode == 0


def _disc_with_hole(hole_prob: float) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The red disc on blue with a blue hole in it that the map filled in at ``hole_prob``."""
    photo, prob = _soft_disc(128)
    yy, xx = np.mgrid[:128, :128]
    hole = np.hypot(yy - 64, xx - 64) < 8
    photo[hole] = (20, 60, 180)
    prob[hole] = hole_prob
    return photo, prob, hole


def test_background_coloured_holes_the_map_is_unsure_of_become_background():
    photo, prob, hole = _disc_with_hole(0.95)
    trimap = matting.make_trimap(prob, 4)
    marked = matting.mark_colour_holes(trimap, photo, prob, 3)
    assert (marked[hole] == 0).all()
    # An unknown ring 3 pixels wide around the hole, and nothing else changed.
    yy, xx = np.mgrid[:128, :128]
    from_centre = np.hypot(yy - 64, xx - 64)
    ring = (marked == 128) & (trimap == 255)
    assert from_centre[ring].min() >= 7 and from_centre[ring].max() <= 8 + 3 + 0.5
    assert ring[(from_centre >= 8) & (from_centre < 10)].all()
    unchanged = ~hole & ~ring
    np.testing.assert_array_equal(marked[unchanged], trimap[unchanged])
    # The matte opens there: the solved matte (background) blended with the map. So it does
    # when the solve runs at a smaller working size and is carried back to full resolution.
    for side in (matting.MATTING_SIDE, 96):
        alpha = matting.estimate_matte(photo, prob, side=side).alpha
        assert alpha[hole].mean() < 0.6
        assert alpha[64, 40] > 0.95  # the red around it stays


def test_holes_the_map_is_sure_of_are_kept():
    photo, prob, _ = _disc_with_hole(1.0)
    trimap = matting.make_trimap(prob, 4)
    np.testing.assert_array_equal(matting.mark_colour_holes(trimap, photo, prob, 3), trimap)


@pytest.mark.parametrize("shape", [(1, 1), (1, 4), (3, 1)])
def test_a_photo_of_one_pixel_or_one_line_is_matted(shape: tuple[int, int]):
    # A 1×1 photo once divided by zero in pymatting's multilevel foreground estimate (found
    # by schemathesis: a 1×1 PNG with a 1×1 hints_file answered 500).
    rgb = np.full((*shape, 3), 200, np.uint8)
    matte = matting.estimate_matte(rgb, np.full(shape, 0.6, np.float32))
    assert matte.alpha.shape == shape and matte.foreground.shape == (*shape, 3)
