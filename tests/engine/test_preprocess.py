"""decode_image: every pixel mode and format we accept, EXIF orientation, limits, hostile input.

Warnings are errors in this module, except those the decoder silences for the whole process at
import (Pillow's, about hostile files): pytest resets the filters for every test, so a fixture
puts those back, as a web process has them.
"""

from __future__ import annotations

import io
import os
import struct
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image, ImageCms

from bgremover.engine.errors import EngineError, ImageDecodeError, ImageTooLargeError
from bgremover.engine.preprocess import (
    PILLOW_MAX_IMAGE_PIXELS,
    SUPPORTED_FORMATS,
    DecodedImage,
    decode_image,
    ignore_pillow_warnings,
)
from tests.fixtures import hostile

pytestmark = pytest.mark.filterwarnings("error")


@pytest.fixture(autouse=True)
def _decoder_warning_filters() -> None:
    ignore_pillow_warnings()


def save(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def reopened_mode(data: bytes) -> str:
    """The mode Pillow gives the file, so each mode test provably exercises its mode."""
    with Image.open(io.BytesIO(data)) as image:
        return image.mode


def assert_well_formed(decoded: DecodedImage, height: int, width: int, *, alpha: bool) -> None:
    assert decoded.rgb.shape == (height, width, 3)
    assert decoded.rgb.dtype == np.uint8
    assert decoded.rgb.flags.c_contiguous and decoded.rgb.flags.writeable
    if alpha:
        assert decoded.alpha is not None
        assert decoded.alpha.shape == (height, width) and decoded.alpha.dtype == np.uint8
        assert decoded.alpha.flags.writeable
    else:
        assert decoded.alpha is None


def grey_rgb(values: np.ndarray) -> np.ndarray:
    return np.repeat(np.asarray(values, np.uint8)[..., None], 3, axis=-1)


class CountingStream(io.BytesIO):
    """Records the furthest byte read, to show that a refusal came from the header alone."""

    def __init__(self, data: bytes) -> None:
        super().__init__(data)
        self.furthest = 0

    def read(self, size: int | None = -1) -> bytes:
        chunk = super().read(size)
        self.furthest = max(self.furthest, self.tell())
        return chunk

    def readinto(self, buffer) -> int:  # type: ignore[override]
        count = super().readinto(buffer)
        self.furthest = max(self.furthest, self.tell())
        return count


# --- pixel modes ------------------------------------------------------------------------------


def test_mode_1_bilevel_becomes_black_and_white_rgb():
    image = Image.new("1", (5, 4), 0)
    image.putpixel((2, 1), 1)
    data = save(image, "PNG")
    assert reopened_mode(data) == "1"
    decoded = decode_image(data)
    assert_well_formed(decoded, 4, 5, alpha=False)
    expected = np.zeros((4, 5), np.uint8)
    expected[1, 2] = 255
    np.testing.assert_array_equal(decoded.rgb, grey_rgb(expected))


def test_mode_L_greyscale_is_copied_to_three_channels():
    grey = np.arange(12, dtype=np.uint8).reshape(3, 4) * 20
    decoded = decode_image(save(Image.fromarray(grey, "L"), "PNG"))
    assert_well_formed(decoded, 3, 4, alpha=False)
    np.testing.assert_array_equal(decoded.rgb, grey_rgb(grey))


def test_mode_LA_keeps_alpha():
    data = save(Image.new("LA", (4, 3), (77, 100)), "PNG")
    assert reopened_mode(data) == "LA"
    decoded = decode_image(data)
    assert_well_formed(decoded, 3, 4, alpha=True)
    assert (decoded.rgb == 77).all() and (decoded.alpha == 100).all()


def test_mode_P_without_transparency_maps_through_the_palette():
    image = Image.fromarray(np.array([[0, 1], [1, 0]], np.uint8), "P")
    image.putpalette([10, 20, 30, 200, 150, 100])
    data = save(image, "PNG")
    assert reopened_mode(data) == "P"
    decoded = decode_image(data)
    assert_well_formed(decoded, 2, 2, alpha=False)
    assert decoded.rgb[0, 0].tolist() == [10, 20, 30]
    assert decoded.rgb[0, 1].tolist() == [200, 150, 100]


def test_mode_P_with_trns_gets_alpha_from_the_transparent_index():
    decoded = decode_image(hostile.palette_png_transparent()[1])
    assert_well_formed(decoded, 8, 8, alpha=True)
    assert (decoded.alpha[0] == 0).all() and (decoded.alpha[1:] == 255).all()
    assert decoded.rgb[3, 0].tolist() == list(hostile.PALETTE_COLOURS[1])
    assert decoded.rgb[3, 7].tolist() == list(hostile.PALETTE_COLOURS[2])


def test_mode_RGB_is_exact():
    rgb = np.random.default_rng(1).integers(0, 256, (6, 5, 3), dtype=np.uint8)
    decoded = decode_image(save(Image.fromarray(rgb), "PNG"))
    assert_well_formed(decoded, 6, 5, alpha=False)
    np.testing.assert_array_equal(decoded.rgb, rgb)


def test_mode_RGB_with_trns_colour_gets_alpha():
    rgb = np.zeros((2, 3, 3), np.uint8)
    rgb[0, 0] = (1, 2, 3)
    decoded = decode_image(save(Image.fromarray(rgb), "PNG", transparency=(1, 2, 3)))
    assert_well_formed(decoded, 2, 3, alpha=True)
    assert decoded.alpha[0, 0] == 0 and (decoded.alpha.ravel()[1:] == 255).all()


def test_mode_RGBA_keeps_colour_and_alpha_exactly():
    rgba = np.random.default_rng(2).integers(0, 256, (4, 7, 4), dtype=np.uint8)
    decoded = decode_image(save(Image.fromarray(rgba), "PNG"))
    assert_well_formed(decoded, 4, 7, alpha=True)
    np.testing.assert_array_equal(decoded.rgb, rgba[..., :3])
    np.testing.assert_array_equal(decoded.alpha, rgba[..., 3])


def test_mode_CMYK_jpeg_becomes_rgb():
    data = hostile.cmyk_jpeg()[1]
    assert reopened_mode(data) == "CMYK"
    decoded = decode_image(data)
    assert_well_formed(decoded, 24, 32, alpha=False)
    # Pure red in CMYK (C=0 M=Y=255 K=0); JPEG is lossy, so allow a little drift.
    assert np.abs(decoded.rgb.astype(int) - [255, 0, 0]).max() <= 8


def test_16bit_grey_png_scales_by_top_byte_not_clipping():
    data = hostile.png_16bit_grey()[1]
    assert reopened_mode(data) == "I;16"
    decoded = decode_image(data)
    assert_well_formed(decoded, 3, len(hostile.GREY16_SAMPLES), alpha=False)
    expected = np.array(hostile.GREY16_SAMPLES) >> 8
    for channel in range(3):
        np.testing.assert_array_equal(decoded.rgb[0, :, channel], expected)
    assert decoded.rgb[0, -1, 0] == 255 and decoded.rgb[0, 2, 0] == 1  # 65535 → 255, 256 → 1


def test_16bit_grey_png_with_trns_value_gets_alpha():
    grey = np.array([[7, 40_000], [65_535, 7]], np.uint16)
    data = save(Image.fromarray(grey), "PNG", transparency=7)
    assert reopened_mode(data) == "I;16"
    decoded = decode_image(data)
    assert_well_formed(decoded, 2, 2, alpha=True)
    np.testing.assert_array_equal(decoded.alpha, [[0, 255], [255, 0]])
    np.testing.assert_array_equal(decoded.rgb[..., 0], grey >> 8)


def test_16bit_big_endian_tiff_I16B():
    samples = np.array([hostile.GREY16_SAMPLES], np.uint16)
    image = Image.frombytes("I;16B", (samples.shape[1], 1), samples.astype(">u2").tobytes())
    data = save(image, "TIFF")
    assert reopened_mode(data) == "I;16B"
    decoded = decode_image(data)
    assert_well_formed(decoded, 1, samples.shape[1], alpha=False)
    np.testing.assert_array_equal(decoded.rgb[0, :, 1], samples[0] >> 8)


def test_32bit_integer_tiff_I_is_read_as_16bit_range():
    values = np.array([[0, 256, 65_535, 70_000, -5]], np.int32)
    data = save(Image.fromarray(values), "TIFF")
    assert reopened_mode(data) == "I"
    decoded = decode_image(data)
    assert_well_formed(decoded, 1, 5, alpha=False)
    assert decoded.rgb[0, :, 0].tolist() == [0, 1, 255, 255, 0]


@pytest.mark.parametrize(
    "values, expected",
    [
        ([0.0, 0.5, 1.0], [0, 128, 255]),  # normalised floats are scaled
        ([0.0, 100.0, 300.0], [0, 100, 255]),  # other ranges clip like Pillow's own convert
        ([np.nan, -1.0, 42.4], [0, 0, 42]),
    ],
)
def test_float_tiff_F(values, expected):
    data = save(Image.fromarray(np.array([values], np.float32)), "TIFF")
    assert reopened_mode(data) == "F"
    decoded = decode_image(data)
    assert_well_formed(decoded, 1, 3, alpha=False)
    assert decoded.rgb[0, :, 2].tolist() == expected


def test_16bit_rgba_png_keeps_top_byte_of_each_channel_and_alpha():
    decoded = decode_image(hostile.png_16bit_rgba()[1])
    assert_well_formed(decoded, 2, 4, alpha=True)
    red, green, blue, alpha = (v >> 8 for v in hostile.RGBA16_PIXEL)
    assert (decoded.rgb == [red, green, blue]).all()
    assert (decoded.alpha == alpha).all()


def test_16bit_rgb_png_without_alpha():
    row = struct.pack(">HHH", 256, 65_535, 4_660) * 3
    data = hostile.png_from_rows(3, 2, bit_depth=16, colour_type=2, rows=[row] * 2)
    decoded = decode_image(data)
    assert_well_formed(decoded, 2, 3, alpha=False)
    assert (decoded.rgb == [1, 255, 18]).all()


# --- formats ----------------------------------------------------------------------------------


def _gradient(width: int = 48, height: int = 32) -> np.ndarray:
    x = np.linspace(0, 255, width)[None, :]
    y = np.linspace(0, 255, height)[:, None]
    return np.stack(
        [
            np.broadcast_to(x, (height, width)),
            np.broadcast_to(y, (height, width)),
            np.full((height, width), 128.0),
        ],
        axis=-1,
    ).astype(np.uint8)


@pytest.mark.parametrize(
    "fmt, params, tolerance",
    [
        ("JPEG", {"quality": 95}, 12),
        ("PNG", {}, 0),
        ("WEBP", {"lossless": True}, 0),
        ("BMP", {}, 0),
        ("TIFF", {}, 0),
        ("GIF", {}, 40),
    ],
)
def test_each_format_decodes_to_the_saved_pixels(fmt, params, tolerance):
    rgb = _gradient()
    decoded = decode_image(save(Image.fromarray(rgb), fmt, **params))
    assert decoded.format == fmt
    assert decoded.frame_count == 1 and decoded.notes == []
    assert_well_formed(decoded, 32, 48, alpha=False)
    assert np.abs(decoded.rgb.astype(int) - rgb).max() <= tolerance


def _encode_with_pillow_or_skip(image: Image.Image, fmt: str, **params: object) -> bytes:
    try:
        return save(image, fmt, **params)
    except (KeyError, OSError, ValueError) as exc:
        pytest.skip(f"no {fmt} encoder in this Pillow build: {exc}")


def test_heif_round_trip_with_alpha():
    rgba = np.dstack([_gradient(), np.full((32, 48), 200, np.uint8)])
    data = _encode_with_pillow_or_skip(Image.fromarray(rgba), "HEIF", quality=-1)
    decoded = decode_image(data)
    assert decoded.format == "HEIF"
    assert_well_formed(decoded, 32, 48, alpha=True)
    assert np.abs(decoded.rgb.astype(int) - rgba[..., :3]).max() <= 6
    assert np.abs(decoded.alpha.astype(int) - 200).max() <= 2


def test_heif_orientation_is_applied_once():
    """pillow-heif applies the rotation itself and resets the tag: no second rotation."""
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, :10] = (255, 0, 0)
    exif = Image.Exif()
    exif[0x0112] = 6
    data = _encode_with_pillow_or_skip(
        Image.fromarray(rgb), "HEIF", exif=exif.tobytes(), quality=95
    )
    decoded = decode_image(data)
    assert decoded.rgb.shape == (30, 20, 3)
    assert decoded.rgb[:8, :, 0].mean() > 200 and decoded.rgb[-8:, :, 0].mean() < 50


@pytest.mark.skipif("AVIF" not in SUPPORTED_FORMATS, reason="Pillow built without AVIF")
def test_avif_round_trip():
    data = _encode_with_pillow_or_skip(Image.fromarray(_gradient()), "AVIF", quality=95)
    decoded = decode_image(data)
    assert decoded.format == "AVIF"
    assert_well_formed(decoded, 32, 48, alpha=False)


def test_truncated_heif_is_refused_as_corrupt():
    data = _encode_with_pillow_or_skip(Image.fromarray(_gradient()), "HEIF", quality=90)
    with pytest.raises(ImageDecodeError, match="truncated or corrupt"):
        decode_image(data[: len(data) // 2])


@pytest.mark.parametrize("case", ["animated_gif", "animated_webp"])
def test_animation_uses_first_frame_counts_frames_and_says_so(case):
    decoded = decode_image(hostile.CASES[case]()[1])
    width, height = hostile.ANIMATION_SIZE
    assert_well_formed(decoded, height, width, alpha=False)
    assert decoded.frame_count == len(hostile.FRAME_COLOURS)
    label = {"animated_gif": "GIF", "animated_webp": "WebP"}[case]
    assert decoded.notes == [f"animated {label}: first frame used"]
    assert (decoded.rgb == hostile.FRAME_COLOURS[0]).all()


def test_gif_damaged_after_its_first_frame_still_gives_the_first_frame():
    frames = [
        Image.fromarray(np.random.default_rng(seed).integers(0, 256, (64, 64, 3), dtype=np.uint8))
        for seed in range(3)
    ]
    data = save(frames[0], "GIF", save_all=True, append_images=frames[1:])
    intact = decode_image(data)
    assert intact.frame_count == 3
    for fraction in (0.9, 0.7):
        damaged = decode_image(data[: int(len(data) * fraction)])
        np.testing.assert_array_equal(damaged.rgb, intact.rgb)


def test_multi_picture_jpeg_is_one_photo_without_a_note():
    image = Image.fromarray(_gradient())
    data = save(image, "MPO", save_all=True, append_images=[image.resize((12, 8))])
    decoded = decode_image(data)
    assert decoded.format == "MPO"
    assert decoded.frame_count == 1 and decoded.notes == []
    assert_well_formed(decoded, 32, 48, alpha=False)


def test_multi_page_tiff_uses_first_page():
    first, second = Image.new("RGB", (6, 4), (9, 9, 9)), Image.new("RGB", (6, 4), (99, 99, 99))
    decoded = decode_image(save(first, "TIFF", save_all=True, append_images=[second]))
    assert decoded.frame_count == 2
    assert decoded.notes == ["multi-page TIFF: first page used"]
    assert (decoded.rgb == 9).all()


@pytest.mark.parametrize("case, size", [("one_pixel", (1, 1)), ("strip", hostile.STRIP_SIZE)])
def test_extreme_shapes_decode(case, size):
    decoded = decode_image(hostile.CASES[case]()[1])
    assert_well_formed(decoded, size[1], size[0], alpha=False)


# --- colour profiles --------------------------------------------------------------------------


def _profile_bytes(name: str) -> bytes:
    return ImageCms.ImageCmsProfile(ImageCms.createProfile(name)).tobytes()


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "TIFF"])
def test_rgb_icc_profile_is_kept(fmt):
    srgb = _profile_bytes("sRGB")
    decoded = decode_image(save(Image.fromarray(_gradient()), fmt, icc_profile=srgb))
    assert decoded.icc_profile == srgb


def test_non_rgb_icc_profile_is_not_attached_to_rgb_pixels():
    lab_profile = _profile_bytes("LAB")
    decoded = decode_image(save(Image.fromarray(_gradient()), "PNG", icc_profile=lab_profile))
    assert decoded.icc_profile is None


def test_no_profile_gives_none():
    assert decode_image(save(Image.fromarray(_gradient()), "PNG")).icc_profile is None


# --- EXIF orientation -------------------------------------------------------------------------


def _left_red_jpeg(orientation: int | None) -> bytes:
    """30 wide × 20 tall, the left third red, the rest black, with the orientation tag."""
    rgb = np.zeros((20, 30, 3), np.uint8)
    rgb[:, :10] = (255, 0, 0)
    exif = Image.Exif()
    if orientation is not None:
        exif[0x0112] = orientation
    return save(Image.fromarray(rgb), "JPEG", quality=95, exif=exif)


def _red_side(rgb: np.ndarray) -> str:
    red = rgb[..., 0].astype(float)
    sides = {
        "top": red[:5].mean(),
        "bottom": red[-5:].mean(),
        "left": red[:, :5].mean(),
        "right": red[:, -5:].mean(),
    }
    return max(sides, key=sides.__getitem__)


@pytest.mark.parametrize(
    "orientation, shape, red_side",
    [
        (None, (20, 30, 3), "left"),
        (1, (20, 30, 3), "left"),
        (3, (20, 30, 3), "right"),
        (6, (30, 20, 3), "top"),  # display = rotate 90° clockwise: left edge goes to the top
        (8, (30, 20, 3), "bottom"),
    ],  # display = rotate 90° counter-clockwise
)
def test_exif_orientation_is_applied(orientation, shape, red_side):
    decoded = decode_image(_left_red_jpeg(orientation))
    assert decoded.rgb.shape == shape
    assert _red_side(decoded.rgb) == red_side
    assert decoded.notes == []


def test_absurd_orientation_is_ignored_with_a_note():
    decoded = decode_image(hostile.absurd_orientation()[1])
    assert decoded.rgb.shape == (30, 40, 3)
    assert decoded.notes == [
        f"the EXIF orientation value {hostile.ABSURD_ORIENTATION} is not valid and was ignored"
    ]


def test_corrupt_exif_block_is_ignored_with_a_note():
    decoded = decode_image(hostile.corrupt_exif()[1])
    assert decoded.rgb.shape == (30, 40, 3)
    assert decoded.notes == ["the photo's EXIF metadata is damaged and was ignored"]


# --- hostile input ----------------------------------------------------------------------------

UNREADABLE_MESSAGES = {
    "empty": "The file is empty",
    "truncated_jpeg": "The image file is truncated or corrupt",
    "truncated_png": "The image file is truncated or corrupt",
    "text_as_png": "Not a supported image format (got: text file)",
    "pdf_as_png": "Not a supported image format (got: PDF document)",
    "html_with_script": "Not a supported image format (got: HTML page)",
    "svg_with_script": "Not a supported image format (got: SVG drawing)",
    "tiff_absurd_samples": "The image file is truncated or corrupt",
}


def test_every_unreadable_case_has_an_expected_message():
    assert set(UNREADABLE_MESSAGES) == hostile.UNREADABLE


@pytest.mark.parametrize("case", sorted(hostile.UNREADABLE))
def test_unreadable_input_raises_decode_error_with_a_clear_message(case, capfd):
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(hostile.CASES[case]()[1])
    assert str(caught.value).startswith(UNREADABLE_MESSAGES[case])
    assert capfd.readouterr() == ("", "")  # nothing printed, not even by libjpeg/zlib


def test_hostile_input_prints_nothing_where_logging_is_not_configured():
    """pytest captures log records itself, so check in a plain interpreter."""
    script = (
        "from bgremover.engine.errors import EngineError\n"
        "from bgremover.engine.preprocess import decode_image\n"
        "from tests.fixtures import hostile\n"
        "for name, build in hostile.CASES.items():\n"
        "    try:\n"
        "        decode_image(build()[1])\n"
        "    except EngineError:\n"
        "        pass\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        capture_output=True,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


def test_unsupported_format_message_lists_what_is_supported():
    with pytest.raises(ImageDecodeError) as caught:
        decode_image(hostile.pdf_as_png()[1])
    assert "Supported formats: JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF" in str(caught.value)


@pytest.mark.parametrize("case", sorted(hostile.DECODABLE))
def test_every_decodable_case_decodes_silently(case, capfd):
    decoded = decode_image(hostile.CASES[case]()[1])
    assert decoded.rgb.ndim == 3 and decoded.rgb.shape[2] == 3
    assert capfd.readouterr() == ("", "")


def test_formats_pillow_knows_but_we_do_not_accept_are_refused():
    data = save(Image.new("RGB", (8, 8)), "PCX")
    with pytest.raises(ImageDecodeError, match="Not a supported image format"):
        decode_image(data)


def test_text_starting_like_a_bmp_is_still_called_text():
    with pytest.raises(ImageDecodeError, match=r"got: text file"):
        decode_image(b"BMX racing results, round one: everybody fell off.\n")


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP"])
def test_every_truncation_of_a_valid_file_is_refused_or_decoded_never_crashes(fmt):
    data = save(Image.fromarray(_gradient(24, 16)), fmt)
    for cut in range(0, len(data), max(1, len(data) // 40)):
        try:
            decode_image(data[:cut])
        except EngineError as exc:
            assert isinstance(exc, ImageDecodeError) and str(exc)


# --- limits -----------------------------------------------------------------------------------


def test_png_bomb_is_refused_from_its_header():
    data = hostile.png_bomb()[1]
    stream = CountingStream(data)
    with pytest.raises(ImageTooLargeError, match="too many pixels.*the limit is 50 megapixels"):
        decode_image(stream)
    assert stream.furthest < len(data) // 100  # only the header was read, not the pixel data


def test_pixel_limit_is_checked_before_decoding_and_names_the_size():
    data = hostile.strip()[1]
    stream = CountingStream(data)
    with pytest.raises(ImageTooLargeError) as caught:
        decode_image(stream, max_pixels=400_000)
    assert str(caught.value).startswith(
        "The image is 10000×50 pixels (0.5 megapixels); the limit is 0.4 megapixels"
    )
    assert stream.furthest < len(data) // 100


def test_image_exactly_at_the_pixel_limit_is_accepted():
    decoded = decode_image(hostile.strip()[1], max_pixels=10_000 * 50)
    assert decoded.rgb.shape == (50, 10_000, 3)


def test_pillow_bomb_limit_is_fixed_and_caps_every_explicit_limit():
    """Pillow's limit is process-wide: set once at import, never swapped while threads decode.
    No limit (or a larger one) still stops at Pillow's, with our message, from the header."""
    assert Image.MAX_IMAGE_PIXELS == PILLOW_MAX_IMAGE_PIXELS is not None
    small = save(Image.new("RGB", (100, 100), (5, 6, 7)), "PNG")
    assert decode_image(small, max_pixels=None).rgb.shape == (100, 100, 3)
    side = 12_000  # 144 MP: above Pillow's limit, below the 2× where Pillow itself refuses
    huge = hostile.png_from_rows(
        side,
        side,
        bit_depth=1,
        colour_type=0,
        level=9,
        rows=(bytes(side // 8) for _ in range(side)),
    )
    for max_pixels in (None, 10 * PILLOW_MAX_IMAGE_PIXELS):
        with pytest.raises(
            ImageTooLargeError,
            match=r"12000×12000 pixels \(144 megapixels\); the limit is 128 mega",
        ):
            decode_image(huge, max_pixels=max_pixels)
    assert Image.MAX_IMAGE_PIXELS == PILLOW_MAX_IMAGE_PIXELS


def test_byte_limit_refuses_bytes_paths_and_file_objects(tmp_path: Path):
    data = hostile.strip()[1]
    path = tmp_path / "strip.png"
    path.write_bytes(data)
    for source in (data, path, str(path), io.BytesIO(data)):
        with pytest.raises(ImageTooLargeError, match=r"The file is 1\.\d+ MB; the limit is 1 MB"):
            decode_image(source, max_bytes=1_000_000)
    assert decode_image(path, max_bytes=len(data)).rgb.shape == (50, 10_000, 3)


class PipeLike:
    """A read-only, non-seekable binary stream, like a socket or a pipe."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)
        self.bytes_read = 0

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        self.bytes_read += len(chunk)
        return chunk

    def seek(self, offset: int, whence: int = 0) -> int:
        raise io.UnsupportedOperation("not seekable")


def test_non_seekable_stream_is_read_no_further_than_the_byte_limit():
    data = hostile.strip()[1]
    pipe = PipeLike(data)
    with pytest.raises(ImageTooLargeError):
        decode_image(pipe, max_bytes=1_000)
    assert pipe.bytes_read == 1_001
    assert decode_image(PipeLike(data)).rgb.shape == (50, 10_000, 3)


# --- sources ----------------------------------------------------------------------------------


def test_sources_bytes_bytearray_path_str_and_file_object_agree(tmp_path: Path):
    data = save(Image.fromarray(_gradient()), "PNG")
    path = tmp_path / "gradient.png"
    path.write_bytes(data)
    with path.open("rb") as handle:
        handle.read(10)  # a file object is read from its start, wherever it was left
        results = [
            decode_image(source).rgb
            for source in (data, bytearray(data), memoryview(data), path, str(path), handle)
        ]
    for rgb in results[1:]:
        np.testing.assert_array_equal(rgb, results[0])


def test_path_source_file_is_closed(tmp_path: Path):
    path = tmp_path / "gradient.png"
    path.write_bytes(save(Image.fromarray(_gradient()), "PNG"))
    decode_image(path)
    open_files = [os.readlink(fd) for fd in Path("/proc/self/fd").iterdir() if fd.is_symlink()]
    assert str(path) not in open_files


@pytest.mark.parametrize("kind", ["missing", "directory"])
def test_unreadable_paths_raise_decode_error(tmp_path: Path, kind):
    path = tmp_path / "nope.png" if kind == "missing" else tmp_path
    with pytest.raises(ImageDecodeError, match="Cannot read the file"):
        decode_image(path)


def test_empty_file_on_disk_and_empty_stream(tmp_path: Path):
    path = tmp_path / "empty.png"
    path.write_bytes(b"")
    for source in (path, io.BytesIO()):
        with pytest.raises(ImageDecodeError, match="^The file is empty$"):
            decode_image(source)


# --- fuzzing ----------------------------------------------------------------------------------

_SIGNATURE_PREFIXES = [
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8\xff\xe0",
    b"GIF89a",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"RIFF\x00\x00\x00\x00WEBP",
    b"\x00\x00\x00\x18ftypheic",
]


@settings(max_examples=150, deadline=None)
@given(prefix=st.sampled_from(_SIGNATURE_PREFIXES), tail=st.binary(max_size=600))
def test_arbitrary_bytes_give_an_image_or_an_engine_error(prefix, tail):
    try:
        decode_image(prefix + tail)
    except EngineError as exc:
        assert str(exc)


@settings(max_examples=150, deadline=None)
@given(fmt=st.sampled_from(["PNG", "JPEG", "GIF", "WEBP", "TIFF", "BMP"]), data=st.data())
def test_damaged_bytes_in_a_valid_file_give_an_image_or_an_engine_error(fmt, data):
    original = bytearray(save(Image.fromarray(_gradient(24, 16)), fmt))
    positions = data.draw(st.lists(st.integers(0, len(original) - 1), min_size=1, max_size=6))
    for position in positions:
        original[position] = data.draw(st.integers(0, 255))
    try:
        decode_image(bytes(original))
    except EngineError as exc:
        assert str(exc)
