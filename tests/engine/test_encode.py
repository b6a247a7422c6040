"""encode_image / encode_mask: lossless round trips, alpha and ICC kept, refusals with reasons."""

from __future__ import annotations

import io
import struct
import zipfile
import zlib

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays
from PIL import Image, ImageCms

from bgremover.engine import encode
from bgremover.engine.encode import FORMATS, encode_image, encode_mask
from bgremover.engine.errors import OptionsError
from bgremover.engine.preprocess import decode_image

pytestmark = pytest.mark.filterwarnings("error")


def photo(height: int = 40, width: int = 60, channels: int = 3, seed: int = 0) -> np.ndarray:
    """A smooth gradient with mild noise, like a small photo; alpha (if any) a soft disc."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width]
    rgb = np.stack([x * 255 / width, y * 255 / height, np.full_like(x, 90.0)], axis=-1)
    rgb = np.clip(rgb + rng.normal(0, 4, rgb.shape), 0, 255).astype(np.uint8)
    if channels == 3:
        return rgb
    distance = np.hypot(x - width / 2, y - height / 2) / (min(height, width) / 2)
    alpha = np.clip((1.2 - distance) * 255 / 0.4, 0, 255).astype(np.uint8)
    return np.dstack([rgb, alpha])


def opened(data: bytes) -> Image.Image:
    image = Image.open(io.BytesIO(data))
    image.load()
    return image


def png_chunk_types(data: bytes) -> list[bytes]:
    """Chunk types in order, checking every chunk's CRC on the way."""
    assert data[:8] == b"\x89PNG\r\n\x1a\n"
    position, types = 8, []
    while position < len(data):
        (length,) = struct.unpack(">I", data[position : position + 4])
        kind_and_body = data[position + 4 : position + 8 + length]
        (crc,) = struct.unpack(">I", data[position + 8 + length : position + 12 + length])
        assert zlib.crc32(kind_and_body) == crc, kind_and_body[:4]
        types.append(kind_and_body[:4])
        position += 12 + length
    return types


SRGB_PROFILE = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")).tobytes()


def test_formats_mapping_matches_the_contract():
    assert FORMATS == {
        "png": ("image/png", ".png"),
        "webp": ("image/webp", ".webp"),
        "jpeg": ("image/jpeg", ".jpg"),
        "zip": ("application/zip", ".zip"),
    }


# --- PNG --------------------------------------------------------------------------------------


@pytest.mark.parametrize("channels, mode", [(3, "RGB"), (4, "RGBA")])
def test_png_round_trip_is_exact_and_in_rgb_order(channels, mode):
    pixels = photo(channels=channels)
    pixels[0, 0, :3] = (255, 0, 0)  # a pure red pixel catches BGR/RGB mix-ups
    data = encode_image(pixels, "png")
    image = opened(data)
    assert (image.format, image.mode, image.size) == ("PNG", mode, (60, 40))
    np.testing.assert_array_equal(np.asarray(image), pixels)
    decoded = decode_image(data)
    np.testing.assert_array_equal(decoded.rgb, pixels[..., :3])
    if channels == 4:
        np.testing.assert_array_equal(decoded.alpha, pixels[..., 3])


def test_png_embeds_the_icc_profile_in_a_valid_chunk_before_the_pixels():
    data = encode_image(photo(channels=4), "png", icc_profile=SRGB_PROFILE)
    types = png_chunk_types(data)
    assert types[:3] == [b"IHDR", b"iCCP", b"IDAT"] and types[-1] == b"IEND"
    assert opened(data).info["icc_profile"] == SRGB_PROFILE
    assert decode_image(data).icc_profile == SRGB_PROFILE


def test_png_without_profile_has_no_colour_chunks():
    types = png_chunk_types(encode_image(photo(), "png"))
    assert b"iCCP" not in types and b"sRGB" not in types


@settings(max_examples=40, deadline=None)
@given(arrays(np.uint8, st.tuples(st.integers(1, 9), st.integers(1, 9), st.sampled_from([3, 4]))))
def test_png_and_lossless_webp_round_trip_any_pixels(pixels):
    np.testing.assert_array_equal(np.asarray(opened(encode_image(pixels, "png"))), pixels)
    if pixels.shape[2] == 4:  # opaque WebP is lossy by design
        # (libwebp leaves out an alpha channel that is opaque everywhere: read back as RGBA)
        webp = opened(encode_image(pixels, "webp")).convert("RGBA")
        assert_same_visible_pixels(np.asarray(webp), pixels)


def assert_same_visible_pixels(decoded: np.ndarray, rgba: np.ndarray) -> None:
    """Lossless WebP may change the colour under fully transparent pixels, nothing else."""
    np.testing.assert_array_equal(decoded[..., 3], rgba[..., 3])
    visible = rgba[..., 3] > 0
    np.testing.assert_array_equal(decoded[visible], rgba[visible])


def psnr(decoded: np.ndarray, original: np.ndarray) -> float:
    mse = np.mean((decoded.astype(float) - original.astype(float)) ** 2)
    return float(10 * np.log10(255**2 / mse))


@pytest.mark.parametrize("shape", [(1, 1, 4), (50, 10_000, 3), (10_000, 2, 4)])
def test_png_extreme_shapes(shape):
    pixels = np.random.default_rng(3).integers(0, 256, shape, dtype=np.uint8)
    np.testing.assert_array_equal(np.asarray(opened(encode_image(pixels, "png"))), pixels)


@pytest.mark.parametrize("channels", [1, 3, 4])
def test_png_deflated_in_many_strips_is_one_valid_stream(monkeypatch, channels):
    """Strips joined by sync flushes, with the rows' Up filter crossing strip borders."""
    monkeypatch.setattr(encode, "_PNG_STRIP_BYTES", 1000)
    shape = (301, 97) if channels == 1 else (301, 97, channels)
    pixels = np.random.default_rng(5).integers(0, 256, shape, dtype=np.uint8)
    pixels[100:200] = pixels[99:100]  # long runs compress, so strips differ in length
    data = encode_mask(pixels) if channels == 1 else encode_image(pixels, "png")
    assert png_chunk_types(data) == [b"IHDR", b"IDAT", b"IEND"]
    np.testing.assert_array_equal(np.asarray(opened(data)), pixels)
    idat = data[data.index(b"IDAT") + 4 : data.index(b"IEND") - 8]
    assert zlib.decompress(idat)[:1] == b"\x02"  # every row filtered with Up


# --- WebP -------------------------------------------------------------------------------------


def test_webp_with_transparency_is_lossless_where_it_shows():
    pixels = photo(channels=4)
    assert (pixels[..., 3] == 0).any() and (pixels[..., 3] == 255).any()
    image = opened(encode_image(pixels, "webp"))
    assert (image.format, image.mode) == ("WEBP", "RGBA")
    assert_same_visible_pixels(np.asarray(image), pixels)
    decoded = decode_image(encode_image(pixels, "webp"))
    np.testing.assert_array_equal(decoded.alpha, pixels[..., 3])


def test_webp_opaque_is_high_quality_lossy():
    pixels = photo(channels=3)
    image = opened(encode_image(pixels, "webp"))
    assert (image.format, image.mode) == ("WEBP", "RGB")
    assert psnr(np.asarray(image), pixels) > 35


@pytest.mark.parametrize("channels", [3, 4])
def test_webp_keeps_icc_profile(channels):
    data = encode_image(photo(channels=channels), "webp", icc_profile=SRGB_PROFILE)
    assert opened(data).info["icc_profile"] == SRGB_PROFILE


def test_webp_refuses_sides_beyond_its_format_limit():
    pixels = np.zeros((2, 16_384, 4), np.uint8)
    with pytest.raises(OptionsError, match=r"WEBP cannot store an image of 16384×2 pixels"):
        encode_image(pixels, "webp")
    assert opened(encode_image(pixels[:, :16_383], "webp")).size == (16_383, 2)


# --- JPEG -------------------------------------------------------------------------------------


def test_jpeg_is_rgb_quality_92_close_to_the_source():
    pixels = photo(channels=3)
    data = encode_image(pixels, "jpeg")
    image = opened(data)
    assert (image.format, image.mode) == ("JPEG", "RGB")
    assert psnr(np.asarray(image), pixels) > 35
    lower = io.BytesIO()
    Image.fromarray(pixels).save(lower, "JPEG", quality=75)
    assert len(data) > len(lower.getvalue())  # quality is set, not left at Pillow's 75


def test_jpeg_keeps_icc_profile():
    data = encode_image(photo(), "jpeg", icc_profile=SRGB_PROFILE)
    assert opened(data).info["icc_profile"] == SRGB_PROFILE
    assert decode_image(data).icc_profile == SRGB_PROFILE


def test_jpeg_refuses_rgba_with_a_way_out():
    with pytest.raises(OptionsError) as caught:
        encode_image(photo(channels=4), "jpeg")
    assert str(caught.value) == (
        "JPEG cannot store transparency: choose a background colour or image, or PNG/WebP"
    )


# --- formats and arguments --------------------------------------------------------------------


@pytest.mark.parametrize(
    "alias, pillow_format", [("PNG", "PNG"), (" WebP ", "WEBP"), ("jpg", "JPEG"), (".jpeg", "JPEG")]
)
def test_format_names_are_forgiving(alias, pillow_format):
    assert opened(encode_image(photo(), alias)).format == pillow_format


@pytest.mark.parametrize("fmt", ["gif", "tiff", "", "pngg"])
def test_unknown_format_lists_the_allowed_ones(fmt):
    with pytest.raises(OptionsError) as caught:
        encode_image(photo(), fmt)
    assert str(caught.value) == f"Unknown output format {fmt!r}: choose one of png, webp, jpeg, zip"


@pytest.mark.parametrize(
    "pixels",
    [
        np.zeros((4, 4), np.uint8),
        np.zeros((4, 4, 2), np.uint8),
        np.zeros((4, 4, 3), np.float32),
        np.zeros((0, 4, 3), np.uint8),
        [[0, 0, 0]],
    ],
)
def test_malformed_pixel_arrays_are_programming_errors(pixels):
    with pytest.raises(ValueError, match="expected a non-empty H×W×3 or H×W×4 uint8 array"):
        encode_image(pixels, "png")


# --- mask -------------------------------------------------------------------------------------


def test_mask_is_a_single_channel_8bit_png_and_exact():
    alpha = photo(channels=4)[..., 3].copy()
    data = encode_mask(alpha)
    image = opened(data)
    assert (image.format, image.mode, image.size) == ("PNG", "L", (60, 40))
    np.testing.assert_array_equal(np.asarray(image), alpha)
    decoded = decode_image(data)
    assert decoded.alpha is None
    np.testing.assert_array_equal(decoded.rgb[..., 0], alpha)


@pytest.mark.parametrize("alpha", [np.zeros((4, 4, 1), np.uint8), np.zeros((4, 4), np.uint16)])
def test_mask_refuses_anything_but_a_2d_uint8_array(alpha):
    with pytest.raises(ValueError, match="expected a non-empty H×W uint8 array"):
        encode_mask(alpha)


# --- ZIP (remove.bg's color.jpg + alpha.png) -------------------------------------------------


@pytest.mark.parametrize("channels", [3, 4])
def test_zip_holds_the_colour_as_its_jpeg_and_the_alpha_as_a_png(channels):
    pixels = photo(channels=channels)
    archive = zipfile.ZipFile(io.BytesIO(encode_image(pixels, "zip", icc_profile=SRGB_PROFILE)))
    assert archive.namelist() == ["color.jpg", "alpha.png"]
    colour = np.ascontiguousarray(pixels[..., :3])
    assert archive.read("color.jpg") == encode_image(colour, "jpeg", icc_profile=SRGB_PROFILE)
    alpha = np.asarray(opened(archive.read("alpha.png")))
    expected = pixels[..., 3] if channels == 4 else np.full(pixels.shape[:2], 255, np.uint8)
    assert np.array_equal(alpha, expected)


def test_zip_refuses_sides_beyond_jpeg_limit():
    with pytest.raises(OptionsError, match=r"JPEG cannot store an image of 65536×1 pixels"):
        encode_image(np.zeros((1, 65_536, 4), np.uint8), "zip")
