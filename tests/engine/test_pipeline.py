"""The whole engine on real photos with the real U²-NetP weights."""

from __future__ import annotations

import io
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from bgremover.engine.compose import Background
from bgremover.engine.errors import ImageDecodeError, ImageTooLargeError, OptionsError
from bgremover.engine.pipeline import (
    STAGES,
    Cutout,
    RemovalOptions,
    RenderOptions,
    remove_background,
    render,
)
from tests.fixtures.hostile import CASES, DECODABLE, TOO_LARGE, UNREADABLE

# Photos whose subject the lite model finds well, with an IoU floor well below what it gets
# (0.93–0.98 here) but far above what a wrong or blank mask gets.
KNOWN_PHOTOS = ("ecssd_0011", "ecssd_0027", "ecssd_0055")
IOU_FLOOR = 0.85


@pytest.fixture(scope="module")
def options(u2netp_weights: Path) -> RemovalOptions:
    return RemovalOptions(model_path=u2netp_weights)


def _photo(eval_dir: Path, stem: str) -> tuple[Path, np.ndarray]:
    mask = np.asarray(Image.open(eval_dir / "sod" / "masks" / f"{stem}.png").convert("L")) >= 128
    return eval_dir / "sod" / "images" / f"{stem}.jpg", mask


@pytest.mark.parametrize("stem", KNOWN_PHOTOS)
def test_known_photos_give_masks_close_to_the_ground_truth(eval_dir, options, stem):
    path, truth = _photo(eval_dir, stem)
    cutout = remove_background(path, options)
    predicted = cutout.alpha >= 128
    assert cutout.alpha.shape == truth.shape
    iou = (predicted & truth).sum() / (predicted | truth).sum()
    assert iou >= IOU_FLOOR


def test_progress_goes_through_the_named_stages_in_order(eval_dir, options):
    path, _ = _photo(eval_dir, KNOWN_PHOTOS[0])
    seen: list[tuple[str, float]] = []
    cutout = remove_background(
        path,
        RemovalOptions(**{**options.__dict__, "matting": "on"}),
        lambda stage, done: seen.append((stage, done)),
    )
    render(cutout, RenderOptions(), lambda stage, done: seen.append((stage, done)))
    names = [stage for stage, _ in seen]
    assert set(names) == set(STAGES)
    assert sorted(names, key=STAGES.index) == names
    fractions = [done for stage, done in seen if stage in STAGES[:4]]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0


def test_matting_off_keeps_the_photo_colours_and_on_changes_only_the_edge(eval_dir, options):
    path = eval_dir / "matting" / "images" / "alphamatting_GT04.png"
    off = remove_background(path, RemovalOptions(**{**options.__dict__, "matting": "off"}))
    on = remove_background(path, RemovalOptions(**{**options.__dict__, "matting": "on"}))
    photo = np.asarray(Image.open(path).convert("RGB"))
    assert np.array_equal(off.foreground, photo)
    changed = np.any(on.foreground != photo, axis=-1)
    assert changed.any()  # colours decontaminated along the edge...
    inner = cv2.erode((off.alpha == 255).astype(np.uint8), np.ones((41, 41), np.uint8))
    assert not changed[inner.astype(bool)].any()  # ...and nowhere deep inside the subject
    assert not np.array_equal(on.alpha, off.alpha)


def test_large_photos_are_matted_at_bounded_size_and_returned_at_full_size(eval_dir, options):
    path = eval_dir / "matting" / "images" / "alphamatting_GT04.png"
    photo = Image.open(path).convert("RGB")
    big = photo.resize((photo.width * 3, photo.height * 3), Image.BICUBIC)
    cutout = remove_background(
        _encoded(big, "PNG"), RemovalOptions(**{**options.__dict__, "matting": "on"})
    )
    assert cutout.alpha.shape == (big.height, big.width)
    small = remove_background(path, RemovalOptions(**{**options.__dict__, "matting": "on"}))
    shrunk = cv2.resize(cutout.alpha, (photo.width, photo.height), interpolation=cv2.INTER_AREA)
    agree = (np.abs(shrunk.astype(int) - small.alpha.astype(int)) < 64).mean()
    assert agree > 0.97


def _encoded(image: Image.Image, fmt: str, **params) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


@pytest.mark.parametrize(
    "orientation, expected_size", [(1, (120, 80)), (6, (80, 120)), (8, (80, 120)), (3, (120, 80))]
)
def test_exif_rotation_gives_the_displayed_size(options, orientation, expected_size):
    photo = Image.new("RGB", (120, 80), (40, 120, 200))
    exif = Image.Exif()
    exif[0x0112] = orientation
    cutout = remove_background(_encoded(photo, "JPEG", exif=exif), options)
    assert (cutout.alpha.shape[1], cutout.alpha.shape[0]) == expected_size
    assert cutout.foreground.shape[:2] == cutout.alpha.shape


@pytest.mark.parametrize("case", sorted(DECODABLE))
def test_odd_but_valid_inputs_give_an_output_of_their_size(options, case):
    _, data = CASES[case]()
    with Image.open(io.BytesIO(data)) as image:
        width, height = image.size
    cutout = remove_background(data, options)
    if case != "absurd_orientation":
        assert cutout.alpha.shape in ((height, width), (width, height))
    assert cutout.alpha.dtype == np.uint8 and cutout.foreground.dtype == np.uint8


def test_source_transparency_stays_transparent(options):
    photo = Image.new("RGBA", (64, 64), (200, 50, 50, 255))
    photo.putalpha(Image.new("L", (64, 64), 0).resize((64, 64)))
    cutout = remove_background(_encoded(photo, "PNG"), options)
    assert cutout.alpha.max() == 0


@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_unreadable_inputs_raise_the_engines_decode_error(options, case):
    _, data = CASES[case]()
    with pytest.raises(ImageDecodeError) as info:
        remove_background(data, options)
    assert str(info.value)


@pytest.mark.parametrize("case", sorted(TOO_LARGE))
def test_over_limit_inputs_raise_too_large(options, case):
    _, data = CASES[case]()
    with pytest.raises(ImageTooLargeError, match="limit"):
        remove_background(data, options)


def test_pixel_limit_is_the_callers(options):
    data = _encoded(Image.new("RGB", (300, 200)), "PNG")
    with pytest.raises(ImageTooLargeError):
        remove_background(data, RemovalOptions(**{**options.__dict__, "max_pixels": 50_000}))


def test_bad_options_are_refused_with_a_message():
    with pytest.raises(OptionsError, match="auto, on or off"):
        RemovalOptions(matting="sometimes")
    with pytest.raises(OptionsError, match="cutout or mask"):
        RenderOptions(output="video")


@pytest.fixture(scope="module")
def cutout(eval_dir, options) -> Cutout:
    return remove_background(_photo(eval_dir, KNOWN_PHOTOS[0])[0], options)


def test_render_transparent_png_has_transparent_corners_and_opaque_subject(cutout):
    image = Image.open(io.BytesIO(render(cutout)))
    assert image.mode == "RGBA" and image.size == cutout.alpha.shape[::-1]
    alpha = np.asarray(image.getchannel("A"))
    assert alpha[0, 0] == 0 and alpha[-1, -1] == 0
    assert alpha.max() == 255


def test_render_jpeg_with_colour_background_and_crop(cutout):
    options = RenderOptions(
        background=Background(kind="color", color=(0, 200, 0)), format="jpeg", crop_margin=0.05
    )
    image = Image.open(io.BytesIO(render(cutout, options))).convert("RGB")
    assert image.size[0] <= cutout.alpha.shape[1] and image.size[1] <= cutout.alpha.shape[0]
    corner = np.asarray(image)[1, 1].astype(int)
    assert abs(corner[0]) < 30 and abs(corner[1] - 200) < 30 and corner[2] < 30


def test_render_mask_is_the_alpha_as_8_bit_grey(cutout):
    image = Image.open(io.BytesIO(render(cutout, RenderOptions(output="mask"))))
    assert image.mode == "L"
    assert np.array_equal(np.asarray(image), cutout.alpha)


def test_recompose_from_stored_rgba_matches_the_original_render(cutout):
    again = Cutout.from_planes(cutout.foreground, cutout.alpha, cutout.original, cutout.icc_profile)
    assert render(again) == render(cutout)
    with pytest.raises(OptionsError):
        Cutout.from_planes(cutout.foreground[:10], cutout.alpha[:10], cutout.original)


def test_warm_up_builds_the_optimised_forward_once(u2netp_weights):
    from bgremover.engine import segment
    from bgremover.engine.pipeline import warm_up
    from bgremover.engine.weights_loader import load_model

    warm_up(RemovalOptions(model_path=u2netp_weights))
    loaded = load_model(path=u2netp_weights)
    # One Segmenter per loaded model and the dtype its precision resolves to.
    key = (id(loaded.module), segment.compute_dtype(loaded.device, "u2netp", "auto"))
    assert key in segment._segmenters
    assert segment.segmenter_for(loaded) is segment._segmenters[key]
