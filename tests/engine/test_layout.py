"""Canvas, scale, position, crop margins, roi, hardening and the size cap, on real numbers:
a 400×300 photo with a 100×100 red square whose box is (50, 100)–(150, 200)."""

from __future__ import annotations

import io
import zipfile

import numpy as np
import pytest
from PIL import Image

from bgremover.engine.compose import Background
from bgremover.engine.layout import Canvas, Length, Margin, plan_layout
from bgremover.engine.pipeline import Cutout, Rendered, RenderOptions, render, render_with_info
from bgremover.engine.render_options import (
    parse_background_color,
    parse_canvas,
    parse_margin,
    parse_position,
    parse_roi,
    parse_size,
)

RED = (200, 30, 30)


def square_cutout(soft_edge: bool = False) -> Cutout:
    photo = np.zeros((300, 400, 3), np.uint8)
    photo[:] = (20, 120, 40)
    foreground = photo.copy()
    foreground[100:200, 50:150] = RED
    alpha = np.zeros((300, 400), np.uint8)
    alpha[100:200, 50:150] = 255
    if soft_edge:
        alpha[100:200, 150:160] = 100  # a semi-transparent strip beside the square
        alpha[140:160, 90:110] = 90  # and a semi-transparent hole inside it
    return Cutout(foreground, alpha, photo)


def rendered(options: RenderOptions, cutout: Cutout | None = None) -> tuple[Rendered, np.ndarray]:
    result = render_with_info(cutout or square_cutout(), options)
    return result, np.asarray(Image.open(io.BytesIO(result.content)))


def opaque_box(pixels: np.ndarray) -> tuple[int, int, int, int]:
    """(top, left, width, height) of the pixels with alpha > 0."""
    alpha = pixels[..., 3] if pixels.ndim == 3 else pixels
    rows = np.flatnonzero(alpha.any(axis=1))
    cols = np.flatnonzero(alpha.any(axis=0))
    return (rows[0], cols[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1)


def test_defaults_keep_the_photo_as_it_is_and_report_the_foreground():
    result, pixels = rendered(RenderOptions())
    assert (result.width, result.height) == (400, 300) == pixels.shape[1::-1]
    assert result.foreground_box == (100, 50, 100, 100) == opaque_box(pixels)
    assert render(square_cutout(), RenderOptions()) == result.content


@pytest.mark.parametrize(
    "canvas, size",
    [("square", (400, 400)), ("4:5", (400, 500)), ("16:9", (533, 300)), ("640x200", (640, 200))],
)
def test_canvas_has_the_asked_size_and_keeps_the_subject_whole(canvas, size):
    result, pixels = rendered(RenderOptions(canvas=parse_canvas(canvas)))
    assert (result.width, result.height) == size == pixels.shape[1::-1]
    top, left, width, height = result.foreground_box
    assert 0 <= left and left + width <= size[0] and 0 <= top and top + height <= size[1]
    # Aspect canvases pad the photo (scale 1); a custom size fits it (200/300 here).
    expected = 100 if canvas != "640x200" else 67
    assert abs(width - expected) <= 1 and abs(height - expected) <= 1


def test_square_canvas_centres_the_padded_photo():
    result, pixels = rendered(RenderOptions(canvas=parse_canvas("square")))
    # 400×300 in 400×400: 50 px of padding above and below, the square moves down by 50.
    assert result.foreground_box == (150, 50, 100, 100)
    assert pixels[150, 50, 3] == 255 and pixels[149, 50, 3] == 0


@pytest.mark.parametrize("scale, side", [(1.0, 400), (0.8, 320), (0.5, 200), (0.1, 40)])
def test_scale_sizes_the_subject_against_the_canvas(scale, side):
    options = RenderOptions(canvas=parse_canvas("square"), scale=scale)
    result, pixels = rendered(options)
    top, left, width, height = result.foreground_box
    assert abs(width - side) <= 1 and abs(height - side) <= 1
    # No position given: centred.
    assert abs(left - (400 - side) / 2) <= 1 and abs(top - (400 - side) / 2) <= 1
    assert opaque_box(pixels) == result.foreground_box


def test_scale_uses_the_subjects_longer_relative_side():
    cutout = square_cutout()
    cutout.alpha[:] = 0
    cutout.alpha[100:150, 50:250] = 255  # 200×50: wide
    result, _ = rendered(RenderOptions(canvas=parse_canvas("4:5"), scale=0.5), cutout)
    _, _, width, height = result.foreground_box
    assert (result.width, result.height) == (400, 500)
    assert (width, height) == (200, 50)  # width is the longer relative side: 0.5 × 400


@pytest.mark.parametrize(
    "position, left, top",
    [
        ("0%", 0, 0),
        ("100%", 200, 200),
        ("0% 100%", 0, 200),
        ("25% 75%", 50, 150),
        ("center", 100, 100),
    ],
)
def test_position_aligns_the_subject(position, left, top):
    options = RenderOptions(
        canvas=parse_canvas("square"), scale=0.5, position=parse_position(position)
    )
    result, _ = rendered(options)
    assert result.foreground_box == (top, left, 200, 200)


def test_position_without_scale_moves_the_subject_at_its_own_size():
    result, _ = rendered(RenderOptions(position=parse_position("100% 0%")))
    assert result.foreground_box == (0, 300, 100, 100)


def test_background_fills_the_whole_canvas():
    options = RenderOptions(
        canvas=parse_canvas("16:9"), scale=0.5, background=parse_background_color("#102030")
    )
    result, pixels = rendered(options)
    assert pixels.shape == (300, 533, 3)
    assert tuple(pixels[0, 0]) == tuple(pixels[-1, -1]) == (16, 32, 48)
    top, left, width, height = result.foreground_box
    assert tuple(pixels[top + height // 2, left + width // 2]) == RED


def test_image_and_blur_backgrounds_fill_a_padded_canvas():
    picture = np.full((50, 80, 3), 90, np.uint8)
    for background in (Background(kind="image", image=picture), Background(kind="blur")):
        options = RenderOptions(canvas=parse_canvas("4:5"), background=background)
        _, pixels = rendered(options)
        assert pixels.shape == (500, 400, 3)
        assert pixels[0, 0].any() and pixels[-1, -1].any()  # no black padding


@pytest.mark.parametrize(
    "margin, size, left_top",
    [
        ("0px", (100, 100), (0, 0)),
        ("30px", (160, 160), (30, 30)),
        ("10%", (120, 120), (10, 10)),
        ("10px 20px", (140, 120), (20, 10)),
        ("5% 10% 15% 20%", (130, 120), (20, 5)),
        ("300px", (200, 200), (50, 50)),  # capped at 50 % of the subject's size
    ],
)
def test_remove_bg_crop_margin_in_px_and_percent(margin, size, left_top):
    result, pixels = rendered(RenderOptions(crop_margin=parse_margin(margin)))
    assert (result.width, result.height) == size
    assert result.foreground_box == (left_top[1], left_top[0], 100, 100)
    assert opaque_box(pixels) == result.foreground_box


def test_crop_margin_is_capped_at_500_px():
    margin = Margin(*(Length(40, "%"),) * 4)
    plan = plan_layout(4000, 4000, (0, 0, 3000, 3000), crop_margin=margin)
    assert (plan.width, plan.height) == (4000, 4000)  # 3000 + 2 × min(1200, 500)


def test_a_margin_beyond_the_photo_pads_it():
    cutout = square_cutout()
    result, pixels = rendered(
        RenderOptions(crop_margin=parse_margin("20px"), background=Background("color")), cutout
    )
    assert (result.width, result.height) == (140, 140)
    cutout.alpha[:] = 0
    cutout.alpha[0:50, 0:50] = 255  # at the photo's corner: the margin reaches outside
    result, pixels = rendered(RenderOptions(crop_margin=parse_margin("20px")), cutout)
    assert (result.width, result.height) == (90, 90)
    assert result.foreground_box == (20, 20, 50, 50)
    assert pixels[5, 5, 3] == 0


def test_the_older_fractional_margin_still_clips_to_the_photo():
    result, _ = rendered(RenderOptions(crop_margin=0.05))
    assert (result.width, result.height) == (110, 110)
    assert result.foreground_box == (5, 5, 100, 100)


def test_crop_then_scale_frames_the_cropped_box():
    options = RenderOptions(
        crop_margin=parse_margin("10%"), canvas=parse_canvas("square"), scale=1.0
    )
    result, _ = rendered(options)
    # The 120×120 crop box fills the 120×120 canvas at scale 100 %.
    assert (result.width, result.height) == (120, 120)
    assert result.foreground_box == (10, 10, 100, 100)


def test_roi_zeroes_alpha_outside_before_anything_else():
    result, pixels = rendered(RenderOptions(roi=parse_roi("0 0 100px 100%")))
    assert result.foreground_box == (100, 50, 50, 100)
    assert pixels[150, 100:, 3].max() == 0 and pixels[150, 99, 3] == 255
    # Crop follows the region's subject.
    result, _ = rendered(RenderOptions(roi=parse_roi("0% 0% 25% 100%"), crop_margin=Margin()))
    assert (result.width, result.height) == (50, 100)


def test_an_roi_without_the_subject_gives_an_empty_result():
    result, pixels = rendered(RenderOptions(roi=parse_roi("300px 0px 400px 50px")))
    assert result.foreground_box == (0, 0, 0, 0)
    assert pixels[..., 3].max() == 0


@pytest.mark.parametrize(
    "color, rgba",
    [
        ("#0000ff80", (0, 0, 255, 128)),
        ("00ff0040", (0, 255, 0, 64)),
        ("tomato", (255, 99, 71, 255)),
    ],
)
def test_background_colour_with_alpha(color, rgba):
    result, pixels = rendered(RenderOptions(background=parse_background_color(color)))
    assert tuple(pixels[0, 0]) == rgba[:3] if rgba[3] == 255 else tuple(pixels[0, 0]) == rgba
    centre = pixels[150, 100]
    assert tuple(centre[:3]) == RED and (len(centre) == 3 or centre[3] == 255)


def test_semi_transparent_subject_over_semi_transparent_colour():
    cutout = square_cutout(soft_edge=True)
    _, pixels = rendered(RenderOptions(background=parse_background_color("#0000ff80")), cutout)
    # alpha = a + bg_a·(1 − a): 100/255 + 128/255 · (155/255) = 0.392 + 0.305
    assert abs(pixels[150, 155, 3] - round(255 * (100 / 255 + 128 / 255 * 155 / 255))) <= 1


def test_semitransparency_false_hardens_inside_and_keeps_a_thin_edge():
    cutout = square_cutout(soft_edge=True)
    _, soft = rendered(RenderOptions(), cutout)
    _, hard = rendered(RenderOptions(semitransparency=False), cutout)
    assert soft[150, 100, 3] == 90 and hard[150, 100, 3] == 0  # the inner hole: cleared
    assert soft[150, 155, 3] == 100 and hard[150, 155, 3] == 0  # a soft strip: cleared
    assert soft[130, 70, 3] == hard[130, 70, 3] == 255
    # Right at the outline (one pixel either side), the soft alpha stays.
    assert hard[150, 150, 3] == 100
    values = set(np.unique(hard[..., 3]))
    assert values <= {0, 90, 100, 255}


@pytest.mark.parametrize("size, cap", [("preview", 250_000), ("medium", 1_500_000)])
def test_output_cap_downscales_to_fit(size, cap):
    photo = np.full((1500, 2000, 3), 50, np.uint8)
    alpha = np.zeros((1500, 2000), np.uint8)
    alpha[500:1000, 500:1500] = 255
    result, pixels = rendered(
        RenderOptions(max_pixels=parse_size(size)), Cutout(photo, alpha, photo)
    )
    assert result.width * result.height <= cap
    assert result.width * result.height > 0.98 * cap
    assert abs(result.width / result.height - 4 / 3) < 0.01
    assert pixels.shape[:2] == (result.height, result.width)
    top, left, width, height = result.foreground_box
    assert abs(width / result.width - 0.5) < 0.01 and abs(height / result.height - 1 / 3) < 0.01


def test_no_cap_for_full():
    assert parse_size("full") is None
    result, _ = rendered(RenderOptions(max_pixels=parse_size("full")))
    assert (result.width, result.height) == (400, 300)


def test_alpha_channel_output_on_the_canvas():
    result, pixels = rendered(RenderOptions(output="mask", canvas=Canvas("pixels", 200, 150)))
    assert pixels.shape == (150, 200)  # greyscale
    assert result.foreground_box == (50, 25, 50, 50) == opaque_box(pixels)


def test_zip_holds_colour_jpeg_and_alpha_png_of_the_output_size():
    result = render_with_info(
        square_cutout(), RenderOptions(format="zip", canvas=parse_canvas("square"))
    )
    with zipfile.ZipFile(io.BytesIO(result.content)) as archive:
        assert archive.namelist() == ["color.jpg", "alpha.png"]
        colour = Image.open(io.BytesIO(archive.read("color.jpg")))
        alpha = Image.open(io.BytesIO(archive.read("alpha.png")))
    assert colour.format == "JPEG" and colour.mode == "RGB" and colour.size == (400, 400)
    assert alpha.format == "PNG" and alpha.mode == "L" and alpha.size == (400, 400)
    alpha_pixels = np.asarray(alpha)
    assert alpha_pixels[200, 100] == 255 and alpha_pixels[10, 10] == 0
    red = np.asarray(colour)[200, 100].astype(int)
    assert np.abs(red - RED).max() <= 6  # JPEG
