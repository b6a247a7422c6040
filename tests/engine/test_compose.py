from pathlib import Path

import cv2
import numpy as np
import pytest

from bgremover.engine.compose import (
    Background,
    blur_sigma,
    cover_fit,
    parse_background,
    subject_box,
)
from bgremover.engine.errors import OptionsError
from bgremover.engine.layout import Plan
from bgremover.engine.scene import background_layer, composite


def solid(height: int, width: int, rgb: tuple[int, int, int]) -> np.ndarray:
    return np.broadcast_to(np.array(rgb, dtype=np.uint8), (height, width, 3)).copy()


def compose(
    foreground: np.ndarray,
    alpha: np.ndarray,
    background: Background,
    original: np.ndarray | None = None,
) -> np.ndarray:
    """The subject over ``background`` as a render on the photo's own canvas composites it
    (scene.py, no shadow)."""
    height, width = alpha.shape
    plan = Plan(width, height, 1.0, 0.0, 0.0)
    backdrop = background_layer(background, plan, original, alpha)
    return composite(foreground, alpha, background, backdrop, None)


# --- colour blending -------------------------------------------------------------------


@pytest.mark.parametrize(
    "alpha, expected",
    [
        (0, (0, 255, 0)),  # all background
        (255, (200, 100, 0)),  # all subject
        # round((200·128 + 0·127)/255) = round(100.39); round((100·128 + 255·127)/255) =
        # round(177.20); blue 0 on both sides
        (128, (100, 177, 0)),
    ],
)
def test_colour_blend_is_exact_at_alpha_0_128_255(alpha, expected):
    foreground = solid(3, 4, (200, 100, 0))
    out = compose(foreground, np.full((3, 4), alpha, np.uint8), parse_background("#00ff00"))
    assert out.dtype == np.uint8 and out.shape == (3, 4, 3)
    assert (out == np.array(expected, np.uint8)).all()


def test_blend_over_several_row_chunks_matches_the_rounded_formula():
    # 1.2 MP: more than one row chunk, so chunk boundaries are exercised.
    rng = np.random.default_rng(1)
    foreground = rng.integers(0, 256, (400, 3000, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (400, 3000), dtype=np.uint8)
    out = compose(foreground, alpha, Background(kind="color", color=(10, 250, 77)))
    a = alpha.astype(np.int64)[..., None]
    expected = np.rint((foreground * a + np.array([10, 250, 77]) * (255 - a)) / 255)
    assert np.array_equal(out, expected.astype(np.uint8))


def test_transparent_keeps_visible_pixels_and_clears_colour_under_full_transparency():
    rng = np.random.default_rng(2)
    foreground = rng.integers(1, 256, (5, 7, 3), dtype=np.uint8)
    alpha = rng.integers(0, 256, (5, 7), dtype=np.uint8)
    alpha[0, :3] = 0
    out = compose(foreground, alpha, Background())
    assert out.shape == (5, 7, 4) and out.dtype == np.uint8
    visible = alpha > 0
    assert np.array_equal(out[..., :3][visible], foreground[visible])
    assert not out[..., :3][~visible].any()
    assert np.array_equal(out[..., 3], alpha)


# --- image backgrounds: cover fit ------------------------------------------------------


def three_bands(height: int, width: int) -> np.ndarray:
    """Red, green and blue thirds from left to right."""
    image = solid(height, width, (255, 0, 0))
    image[:, width // 3 : 2 * width // 3] = (0, 255, 0)
    image[:, 2 * width // 3 :] = (0, 0, 255)
    return image


def test_wide_background_on_a_tall_photo_is_scaled_to_cover_and_centre_cropped():
    # 300×100 onto 40×80: scale 0.8 covers the height, the centre 50 columns survive,
    # all inside the green middle third.
    background = Background(kind="image", image=three_bands(100, 300))
    foreground = solid(80, 40, (0, 0, 0))
    out = compose(foreground, np.zeros((80, 40), np.uint8), background)
    assert out.shape == (80, 40, 3)
    assert (out == (0, 255, 0)).all()


def test_cover_fit_keeps_the_centre_of_a_horizontal_gradient():
    gradient = np.tile(np.arange(200, dtype=np.uint8)[None, :, None], (50, 1, 3))
    fitted = cover_fit(gradient, 40, 80)
    assert fitted.shape == (80, 40, 3)
    # source crop is columns 87.5…112.5 of the gradient, upscaled 3.2×
    row = fitted[40, :, 0].astype(int)
    assert 86 <= row[0] <= 90 and 110 <= row[-1] <= 113
    assert (np.diff(row) >= 0).all()
    assert abs(int(fitted[:, 19:21, 0].mean()) - 100) <= 1


def test_cover_fit_of_a_tall_background_on_a_wide_photo_crops_top_and_bottom():
    tall = three_bands(100, 300).transpose(1, 0, 2).copy()  # 100×300, bands top to bottom
    fitted = cover_fit(tall, 120, 30)
    assert fitted.shape == (30, 120, 3)
    assert (fitted == (0, 255, 0)).all()


def test_same_aspect_background_is_resized_not_cropped():
    fitted = cover_fit(three_bands(60, 90), 30, 20)
    assert fitted.shape == (20, 30, 3)
    assert (fitted[:, :9] == (255, 0, 0)).all() and (fitted[:, -9:] == (0, 0, 255)).all()


# --- blur backgrounds ------------------------------------------------------------------


def subject_on_texture(size: int = 240) -> tuple[np.ndarray, np.ndarray]:
    """A red square subject on a green, noisy background; alpha is 255 on the square."""
    rng = np.random.default_rng(3)
    photo = solid(size, size, (0, 180, 0))
    photo[..., 1] = rng.integers(120, 240, (size, size), dtype=np.uint8)
    photo[80:160, 80:160] = (250, 20, 20)
    alpha = np.zeros((size, size), np.uint8)
    alpha[80:160, 80:160] = 255
    return photo, alpha


def test_blur_changes_the_background_and_keeps_the_opaque_subject():
    photo, alpha = subject_on_texture()
    out = compose(photo, alpha, Background(kind="blur", blur_strength=40), original=photo)
    assert out.shape == photo.shape and out.dtype == np.uint8
    assert np.array_equal(out[alpha == 255], photo[alpha == 255])
    background = alpha == 0
    noise_before = photo[..., 1][background].std()
    noise_after = out[..., 1][background].std()
    assert noise_after < noise_before / 4


def test_stronger_blur_smooths_more():
    photo, alpha = subject_on_texture()
    spreads = [
        compose(photo, alpha, Background(kind="blur", blur_strength=s), photo)[..., 1][:60].std()
        for s in (1, 30, 100)
    ]
    assert spreads[0] > spreads[1] > spreads[2]


def test_blur_does_not_bleed_the_subject_colour_into_the_background():
    photo, alpha = subject_on_texture()
    out = compose(photo, alpha, Background(kind="blur", blur_strength=60), original=photo)
    ring = out[70:80, 80:160]  # background just above the red square
    assert ring[..., 0].max() <= 10
    # a plain blur of the same strength does smear red there: the check above is not trivial
    plain = cv2.GaussianBlur(photo, (0, 0), blur_sigma(60, 240, 240))
    assert plain[70:80, 80:160, 0].mean() > 50


def test_blur_without_the_original_photo_is_refused():
    photo, alpha = subject_on_texture(16)
    with pytest.raises(OptionsError, match="original photo"):
        compose(photo, alpha, Background(kind="blur"))


def test_blur_runs_on_a_one_pixel_image():
    photo = solid(1, 1, (9, 9, 9))
    out = compose(photo, np.zeros((1, 1), np.uint8), Background(kind="blur"), photo)
    assert out.shape == (1, 1, 3)


# --- parse_background ------------------------------------------------------------------


@pytest.mark.parametrize(
    "spec, expected",
    [
        ("transparent", Background()),
        (" Transparent ", Background()),
        ("#00ff00", Background(kind="color", color=(0, 255, 0))),
        ("#AbCdEf", Background(kind="color", color=(0xAB, 0xCD, 0xEF))),
        ("#0F8", Background(kind="color", color=(0, 0xFF, 0x88))),
        ("blur", Background(kind="blur", blur_strength=50)),
        ("blur:1", Background(kind="blur", blur_strength=1)),
        ("BLUR:100", Background(kind="blur", blur_strength=100)),
        ("blur:12.5", Background(kind="blur", blur_strength=12.5)),
    ],
)
def test_parse_background_accepts(spec, expected):
    assert parse_background(spec) == expected


@pytest.mark.parametrize(
    "spec, message",
    [
        ("", "empty"),
        ("#12", "not a hex colour"),
        ("#1234567", "not a hex colour"),
        ("#ggg", "not a hex colour"),
        ("blur:0", "1 to 100"),
        ("blur:101", "1 to 100"),
        ("blur:", "1 to 100"),
        ("blur:abc", "1 to 100"),
        ("blur:nan", "1 to 100"),
        ("reddish", "existing image file"),
        ("/no/such/picture.jpg", "existing image file"),
    ],
)
def test_parse_background_rejects(spec, message):
    with pytest.raises(OptionsError, match=message):
        parse_background(spec)


def test_parse_background_reads_an_image_file(tmp_path: Path):
    path = tmp_path / "bands.png"
    cv2.imwrite(str(path), three_bands(30, 60)[..., ::-1])  # OpenCV writes BGR
    background = parse_background(str(path))
    assert background.kind == "image"
    assert np.array_equal(background.image, three_bands(30, 60))


def test_parse_background_flattens_a_transparent_image_onto_white(tmp_path: Path):
    path = tmp_path / "half.png"
    bgra = np.zeros((4, 4, 4), np.uint8)
    bgra[..., 2] = 255  # red
    bgra[:, :2, 3] = 255  # left half opaque, right half fully transparent
    cv2.imwrite(str(path), bgra)
    image = parse_background(path).image
    assert (image[:, :2] == (255, 0, 0)).all() and (image[:, 2:] == (255, 255, 255)).all()


def test_parse_background_names_the_file_that_is_not_an_image(tmp_path: Path):
    path = tmp_path / "notes.png"
    path.write_text("not a picture")
    with pytest.raises(OptionsError, match="notes.png"):
        parse_background(str(path))


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"kind": "gradient"}, "unknown background kind"),
        ({"kind": "color", "color": (0, 256, 0)}, "0–255"),
        ({"kind": "color", "color": (0, 0)}, "0–255"),
        ({"kind": "blur", "blur_strength": 0}, "between 1 and 100"),
        ({"kind": "image"}, "H×W×3 uint8"),
        ({"kind": "image", "image": np.zeros((4, 4), np.uint8)}, "H×W×3 uint8"),
    ],
)
def test_background_rejects_invalid_values(kwargs, message):
    with pytest.raises(OptionsError, match=message):
        Background(**kwargs)


# --- subject box --------------------------------------------------------------


def test_subject_box_is_the_exclusive_bounds_of_visible_pixels():
    alpha = np.zeros((100, 200), np.uint8)
    alpha[30:50, 60:100] = 1  # faint pixels count: anything above zero is visible
    assert subject_box(alpha, 0) == (60, 30, 100, 50)


def test_subject_box_grows_by_the_margin_of_the_longer_side():
    alpha = np.zeros((100, 200), np.uint8)
    alpha[30:50, 60:100] = 255  # 40 wide, 20 tall: 10 % margin is 4 px each side
    assert subject_box(alpha, 0.10) == (56, 26, 104, 54)


def test_subject_box_is_clipped_to_the_image():
    alpha = np.zeros((100, 200), np.uint8)
    alpha[5:95, 150:198] = 255
    assert subject_box(alpha, 0.5) == (105, 0, 200, 100)


def test_subject_box_of_an_empty_alpha_is_the_whole_image():
    assert subject_box(np.zeros((30, 40), np.uint8), 0.05) == (0, 0, 40, 30)


@pytest.mark.parametrize("margin", [-0.1, float("inf"), float("nan")])
def test_subject_box_rejects_a_bad_margin(margin):
    with pytest.raises(OptionsError, match="margin"):
        subject_box(np.ones((4, 4), np.uint8), margin)


@pytest.mark.parametrize("shape", [(1, 1), (1, 5), (2, 2), (3, 1), (40, 30)])
def test_transparent_compose_clears_hidden_colour_at_any_size(shape):
    rng = np.random.default_rng(sum(shape))
    foreground = rng.integers(0, 256, (*shape, 3), dtype=np.uint8)
    alpha = (rng.integers(0, 3, shape) * 120).astype(np.uint8)
    rgba = compose(foreground, alpha, Background())
    assert rgba.shape == (*shape, 4)
    assert np.array_equal(rgba[..., 3], alpha)
    assert np.array_equal(rgba[..., :3], foreground * (alpha > 0)[..., None])
