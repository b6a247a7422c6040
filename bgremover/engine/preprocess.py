"""Stage "decoding": turn an uploaded file into 8-bit RGB (+ alpha) arrays.

Everything Pillow raises while reading untrusted input ends here as ImageDecodeError /
ImageTooLargeError with a message meant for people. Before any pixel is decoded the header and
the file's structure are checked: the canvas against the pixel limit, the frame or page count,
the embedded colour profile's size and the bytes after the end of the image (container.py
finds those without decoding; sniff.py names what a file that is no image looks like).
probe_image runs the same checks for an upload plus a decode bounded in memory; decode_image
decodes the first frame in full and hands the pixels to pixels.py.

Decodes may run at once in threads of one process, so nothing here swaps process-wide state:
Pillow's bomb limit is fixed once at import, its warnings are silenced by filters installed
once (not caught per decode), and damaged EXIF is found by reading the EXIF block itself.

Several decodes may also share a server's memory, so a decode holds as few full copies of the
pixels as it can: Pillow's own (4 bytes a pixel, RGB too) and the arrays it returns (3, or 4
with alpha; pixels.py). The file's bytes are let go before the pixels are decoded (unless the
caller holds them). Peak for a 49 MP JPEG or RGB PNG: 7.1 bytes a pixel; RGBA 8.1.
"""

from __future__ import annotations

import io
import logging
import os
import re
import warnings
from contextlib import ExitStack
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pillow_heif
from PIL import Image, PngImagePlugin

from bgremover.engine import container, pixels, sniff
from bgremover.engine.errors import ImageDecodeError, ImageTooLargeError

pillow_heif.register_heif_opener()
Image.init()
# Pillow logs about hostile files (e.g. "More samples per pixel than can be decoded") without a
# handler of its own, so where logging is not configured Python prints them to stderr. Records
# still propagate to whatever handlers the application sets up.
logging.getLogger("PIL").addHandler(logging.NullHandler())

# Pillow's own bomb check stays on as a backstop, at one fixed value: changing it per decode
# would race with other threads. Our limits (max_pixels) are checked from the header first.
PILLOW_MAX_IMAGE_PIXELS = 128_000_000
Image.MAX_IMAGE_PIXELS = PILLOW_MAX_IMAGE_PIXELS

MAX_PIXELS = 50_000_000
# A TIFF's pages or a GIF's frames can only be counted by walking them; a few thousand tiny
# ones cost Pillow minutes (TIFF is quadratic). Photos have one.
MAX_FRAMES = 1000
MAX_ICC_BYTES = 1_048_576  # real profiles are a few kB; a 1 MB one is already generous
MAX_TRAILING_BYTES = 1_048_576  # bytes allowed after the end of a (non-JPEG) image
# probe_image decodes other formats than JPEG fully only up to this many pixels (16 MB RGBA).
PROBE_DECODE_PIXELS = 4_000_000


def ignore_pillow_warnings() -> None:
    """Install the process-wide filters that keep Pillow's warnings about hostile files
    (damaged EXIF, oversized images) from reaching stderr; done at import. Idempotent: call it
    again where something reset the filters (pytest does for every test)."""
    warnings.filterwarnings("ignore", category=Image.DecompressionBombWarning)
    warnings.filterwarnings("ignore", category=UserWarning, module=r"PIL\.")


ignore_pillow_warnings()

# Only these plugins ever see the bytes: Pillow knows dozens of formats (EPS would even run
# Ghostscript), and people upload photos. Multi-picture camera JPEGs come through "JPEG" as
# format "MPO"; AVIF is there when Pillow was built with it.
# Each format with its name for people, its MIME types and file extensions: the one table
# the error message, the upload page's hint and the file pickers' accept= all come from.
FORMAT_FILE_TYPES: dict[str, tuple[str, tuple[str, ...], tuple[str, ...]]] = {
    "JPEG": ("JPEG", ("image/jpeg",), (".jpg", ".jpeg")),
    "PNG": ("PNG", ("image/png",), (".png",)),
    "WEBP": ("WebP", ("image/webp",), (".webp",)),
    "GIF": ("GIF", ("image/gif",), (".gif",)),
    "BMP": ("BMP", ("image/bmp",), (".bmp",)),
    "TIFF": ("TIFF", ("image/tiff",), (".tif", ".tiff")),
    "HEIF": ("HEIC/HEIF", ("image/heic", "image/heif"), (".heic", ".heif")),
    "AVIF": ("AVIF", ("image/avif",), (".avif",)),
}
SUPPORTED_FORMATS: tuple[str, ...] = tuple(f for f in FORMAT_FILE_TYPES if f in Image.OPEN)
# "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF, AVIF" (AVIF where Pillow was built with it).
SUPPORTED_FOR_PEOPLE = ", ".join(FORMAT_FILE_TYPES[f][0] for f in SUPPORTED_FORMATS)
_SUPPORTED_FOR_PEOPLE = SUPPORTED_FOR_PEOPLE
# A file input's accept=: every supported MIME type and extension (HEIC has no MIME type on
# some systems, so the extensions are listed too).
SUPPORTED_ACCEPT = ",".join(
    [t for f in SUPPORTED_FORMATS for t in FORMAT_FILE_TYPES[f][1]]
    + [e for f in SUPPORTED_FORMATS for e in FORMAT_FILE_TYPES[f][2]]
)

_TRUNCATED = "The image file is truncated or corrupt"
_CORRUPT_EXIF_NOTE = "the photo's EXIF metadata is damaged and was ignored"
_JPEG_FORMATS = ("JPEG", "MPO")
_SWAPS_SIDES = frozenset({5, 6, 7, 8})  # orientations that turn the image by 90°
Source = bytes | bytearray | memoryview | str | os.PathLike[str] | BinaryIO


@dataclass
class DecodedImage:
    rgb: np.ndarray  # H×W×3 uint8 RGB, EXIF orientation applied
    alpha: np.ndarray | None  # H×W uint8 when the source has transparency, else None
    icc_profile: bytes | None  # the source's RGB ICC profile (kept for the output)
    format: str  # Pillow format name: "JPEG", "PNG", "WEBP", "HEIF", ...
    frame_count: int = 1  # >1: animation, TIFF pages or HEIF images; the first is used
    notes: list[str] = field(default_factory=list)


@dataclass(frozen=True)
class ImageInfo:
    """What probe_image learnt about an upload without decoding it in full."""

    format: str  # Pillow format name, as DecodedImage.format
    width: int  # after the EXIF orientation (5-8 swap the sides)
    height: int
    frame_count: int
    notes: tuple[str, ...]  # the notes decode_image would give, as far as the header tells
    image_end: int | None  # where the image's data ends (JPEG: its first image); None: unknown


@dataclass(frozen=True)
class _Limits:
    pixels: int | None
    frames: int
    icc_bytes: int
    trailing_bytes: int


@dataclass(frozen=True)
class _FileExif:
    """What the EXIF orientation needs from the file's bytes, taken before the pixels are
    decoded so that the bytes need not stay in memory beside them."""

    tiff: container.ExifOrientation | None = None  # a TIFF's first page's own tags
    png_chunk: bytes | None = None  # a PNG's eXIf chunk, wherever it lies


@dataclass
class _Opened:
    """An image opened from its header, with what the file's structure told."""

    image: Image.Image
    file_exif: _FileExif
    frame_count: int
    image_end: int | None
    notes: list[str]


def decode_image(
    source: Source,
    *,
    max_pixels: int | None = MAX_PIXELS,
    max_bytes: int | None = None,
    max_frames: int = MAX_FRAMES,
    max_icc_bytes: int = MAX_ICC_BYTES,
    max_trailing_bytes: int = MAX_TRAILING_BYTES,
) -> DecodedImage:
    """Decode the first frame of an image file into 8-bit RGB and (when present) alpha.

    ``source`` is the file's bytes, a path, or a binary file object (read from its start).
    The pixel limit is checked from the header before any pixel data is decoded; with
    ``max_pixels=None`` Pillow's fixed limit (PILLOW_MAX_IMAGE_PIXELS) still applies.
    The arrays returned are C-contiguous, writable and owned by nobody else.
    """
    limits = _Limits(max_pixels, max_frames, max_icc_bytes, max_trailing_bytes)
    with ExitStack() as cleanup:
        opened = _open_checked(source, max_bytes, limits, cleanup)
        image, notes = opened.image, opened.notes
        _load_pixels(image, max_pixels)
        orientation = _orientation(image, opened.file_exif, notes)
        icc_profile = _rgb_profile(image, notes)
        rgb, alpha = pixels.take(image, orientation)  # closes the image
        return DecodedImage(
            rgb=rgb,
            alpha=alpha,
            icc_profile=icc_profile,
            format=image.format or "unknown",
            frame_count=opened.frame_count,
            notes=notes,
        )


def probe_image(
    source: Source,
    *,
    max_pixels: int | None = MAX_PIXELS,
    max_bytes: int | None = None,
    max_frames: int = MAX_FRAMES,
    max_icc_bytes: int = MAX_ICC_BYTES,
    max_trailing_bytes: int = MAX_TRAILING_BYTES,
    decode_pixels: int = PROBE_DECODE_PIXELS,
) -> ImageInfo:
    """Check an upload as decode_image would, without decoding a large image in full.

    Every header and structure check of decode_image runs; then a decode bounded in memory
    looks for truncated or corrupt data: JPEG is decoded at 1/8 scale (the whole entropy
    stream, little memory); other formats are decoded in full up to ``decode_pixels``, and
    above that only PNG can still be checked (its chunk CRCs and IEND, by Pillow's verify()).
    A big progressive JPEG (decoding it keeps every coefficient: ~3 bytes a pixel) must reach
    its EOI marker instead. What this cannot see, the job's decode_image still refuses.
    """
    limits = _Limits(max_pixels, max_frames, max_icc_bytes, max_trailing_bytes)
    with ExitStack() as cleanup:
        opened = _open_checked(source, max_bytes, limits, cleanup)
        image, notes = opened.image, opened.notes
        orientation = _orientation(image, opened.file_exif, notes)
        _rgb_profile(image, notes)
        width, height = image.size
        _bounded_decode(image, opened.image_end, decode_pixels, max_pixels)
        if image.format not in _JPEG_FORMATS:
            width, height = image.size  # a GIF's first frame may outgrow its canvas
        if orientation in _SWAPS_SIDES:
            width, height = height, width
        return ImageInfo(
            format=image.format or "unknown",
            width=width,
            height=height,
            frame_count=opened.frame_count,
            notes=tuple(notes),
            image_end=opened.image_end,
        )


def _open_checked(
    source: Source, max_bytes: int | None, limits: _Limits, cleanup: ExitStack
) -> _Opened:
    """Open from the header and run every check that needs no pixels; the image is left on
    its first frame, with the frame note when there are more. The whole file is read for the
    structure walks and let go on return (unless the caller holds it)."""
    stream = _open_stream(source, max_bytes, cleanup)
    image = _open_image(stream, limits.pixels)
    cleanup.callback(image.close)
    data = _whole_file(stream)
    _check_icc_profile(image, limits.icc_bytes)
    frame_count = _frame_count(image, data, limits.frames)
    image_end = container.find_image_end(image.format or "", data)
    if image.format not in _JPEG_FORMATS:
        # Cameras append several MB after a JPEG on purpose (extra views, motion-photo video);
        # after any other image such bytes are someone's payload.
        _check_trailing_bytes(len(data), image_end, limits.trailing_bytes)
    notes: list[str] = []
    _first_frame(image, frame_count, notes)
    return _Opened(image, _file_exif(image, data), frame_count, image_end, notes)


def _open_stream(source: Source, max_bytes: int | None, cleanup: ExitStack) -> BinaryIO:
    """A seekable binary stream over the whole input, after the empty and byte-size checks."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        # BytesIO shares a bytes object until something writes or exports its buffer:
        # getbuffer() would copy the whole file.
        stream: BinaryIO = io.BytesIO(source)
        size = memoryview(source).nbytes
    elif isinstance(source, (str, os.PathLike)):
        try:
            stream = cleanup.enter_context(open(source, "rb"))
            size = os.fstat(stream.fileno()).st_size
        except OSError as exc:
            reason = exc.strerror or str(exc)
            raise ImageDecodeError(f"Cannot read the file {os.fspath(source)!r}: {reason}") from exc
    elif hasattr(source, "read"):
        stream, size = _file_object_stream(source, max_bytes)
    else:
        raise TypeError(
            f"An image source must be bytes, a path or a binary file, not {type(source).__name__}"
        )
    if size == 0:
        raise ImageDecodeError("The file is empty")
    if max_bytes is not None and size > max_bytes:
        raise ImageTooLargeError(
            f"The file is {_megabytes(size)}; the limit is {_megabytes(max_bytes)}"
        )
    return stream


def _file_object_stream(source: BinaryIO, max_bytes: int | None) -> tuple[BinaryIO, int]:
    try:
        source.seek(0, os.SEEK_END)
        size = source.tell()
        source.seek(0)
        return source, size
    except (AttributeError, OSError, ValueError):
        # Not seekable (a pipe, a socket): read it, but never more than one byte past the limit.
        data = source.read(-1 if max_bytes is None else max_bytes + 1)
        if not isinstance(data, bytes):
            raise TypeError("An image file must be opened in binary mode") from None
        return io.BytesIO(data), len(data)


def _whole_file(stream: BinaryIO) -> bytes:
    """All the bytes, for the structure walks; the stream is left where Pillow had it."""
    if isinstance(stream, io.BytesIO):
        return stream.getvalue()
    position = stream.tell()
    try:
        stream.seek(0)
        data = stream.read()
    except OSError as exc:
        raise ImageDecodeError(_TRUNCATED) from exc
    finally:
        stream.seek(position)
    if not isinstance(data, bytes):
        raise TypeError("An image file must be opened in binary mode")
    return data


def _open_image(stream: BinaryIO, max_pixels: int | None) -> Image.Image:
    """Read the header only (Pillow opens lazily) and refuse oversized images right there."""
    try:
        image = Image.open(stream, formats=SUPPORTED_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        # The warning only arrives as an exception where warnings were made errors.
        raise ImageTooLargeError(
            _too_many_pixels(None, _effective_pixel_limit(max_pixels))
        ) from exc
    except ValueError as exc:
        if _PNG_METADATA_TOO_LARGE in str(exc):
            raise ImageTooLargeError(
                "The image's embedded metadata (colour profile or text) is too large to read "
                f"safely; the limit is {_megabytes(PngImagePlugin.MAX_TEXT_CHUNK)}."
            ) from exc
        raise ImageDecodeError(_not_an_image(stream)) from exc
    except Exception as exc:
        # Unidentified, or a plugin choked on a header: say what the bytes look like.
        raise ImageDecodeError(_not_an_image(stream)) from exc
    # For animations this is the canvas (the logical screen), not the first frame's size.
    _check_pixels(image.size, max_pixels)
    return image


# Pillow refuses PNG text and colour-profile chunks that inflate past MAX_TEXT_CHUNK (1 MiB).
_PNG_METADATA_TOO_LARGE = "Decompressed data too large"


def _effective_pixel_limit(max_pixels: int | None) -> int:
    """Our limit, never above Pillow's fixed one (which would refuse or warn past it)."""
    if max_pixels is None:
        return PILLOW_MAX_IMAGE_PIXELS
    return min(max_pixels, PILLOW_MAX_IMAGE_PIXELS)


def _check_pixels(size: tuple[int, int], max_pixels: int | None) -> None:
    limit = _effective_pixel_limit(max_pixels)
    if size[0] * size[1] > limit:
        raise ImageTooLargeError(_too_many_pixels(size, limit))


def _check_icc_profile(image: Image.Image, max_icc_bytes: int) -> None:
    profile = image.info.get("icc_profile") or b""
    if len(profile) > max_icc_bytes:
        raise ImageTooLargeError(
            f"The image's embedded colour profile is "
            f"{_megabytes(len(profile))}; the limit is "
            f"{_megabytes(max_icc_bytes)}."
        )


def _check_trailing_bytes(file_size: int, image_end: int | None, max_trailing_bytes: int) -> None:
    if image_end is not None and file_size - image_end > max_trailing_bytes:
        raise ImageTooLargeError(
            f"The file holds {_megabytes(file_size - image_end)} of other "
            f"data after the end of the image; the limit is "
            f"{_megabytes(max_trailing_bytes)}."
        )


def _frame_count(image: Image.Image, data: bytes, max_frames: int) -> int:
    """Frames, pages or images in the file, refused past ``max_frames``.

    Pillow's n_frames walks every frame of a GIF or TIFF (for TIFF in quadratic time), so those
    are counted here, stopping one past the limit. WebP, APNG (acTL) and HEIF/AVIF declare
    their count, which Pillow reads at open. A multi-picture JPEG's extra images are previews,
    depth or HDR gain maps of the one photo, not frames of it.
    """
    if image.format == "MPO":
        return 1
    if image.format == "GIF":
        frame_count = container.gif_layout(data, max_frames).frames
    elif image.format == "TIFF":
        frame_count = container.tiff_page_count(data, max_frames + 1)
    else:
        try:
            frame_count = int(getattr(image, "n_frames", 1))
        except Exception:
            frame_count = 1  # a damaged later frame must not cost the first one
    if frame_count > max_frames:
        raise ImageTooLargeError(
            f"The file holds more than {max_frames} frames or pages; the limit is {max_frames}."
        )
    return max(frame_count, 1)


def _too_many_pixels(size: tuple[int, int] | None, max_pixels: int) -> str:
    limit = f"; the limit is {_megapixels(max_pixels)}"
    if size is None:
        return f"The image has too many pixels to decode safely{limit}. Resize it and try again."
    width, height = size
    return (
        f"The image is {width}×{height} pixels ({_megapixels(width * height)}){limit}. "
        "Resize it and try again."
    )


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.3g} megapixels"


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.3g} MB" if size >= 100_000 else f"{size:,} bytes"


def _first_frame(image: Image.Image, frame_count: int, notes: list[str]) -> None:
    """Leave the image on its first frame, with a note when the file holds more."""
    try:
        image.seek(0)
    except Exception as exc:
        raise ImageDecodeError(_TRUNCATED) from exc
    if frame_count > 1:
        label = {"GIF": "GIF", "WEBP": "WebP", "PNG": "PNG"}.get(image.format or "")
        if label:
            notes.append(f"animated {label}: first frame used")
        elif image.format == "TIFF":
            notes.append("multi-page TIFF: first page used")
        else:
            notes.append(f"the file holds {frame_count} images: the first one was used")


def _load_pixels(image: Image.Image, max_pixels: int | None) -> None:
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(
            _too_many_pixels(None, _effective_pixel_limit(max_pixels))
        ) from exc
    except MemoryError as exc:
        raise ImageTooLargeError("Not enough memory to decode this image") from exc
    except Exception as exc:
        raise ImageDecodeError(_TRUNCATED) from exc
    # A GIF frame may be larger than the size its header announced.
    _check_pixels(image.size, max_pixels)


def _bounded_decode(
    image: Image.Image, image_end: int | None, decode_pixels: int, max_pixels: int | None
) -> None:
    """Decode as much as memory allows, to find truncated or corrupt data (see probe_image)."""
    width, height = image.size
    if image.format in _JPEG_FORMATS:
        if image.info.get("progressive") and width * height > decode_pixels:
            if image_end is None:
                raise ImageDecodeError(_TRUNCATED)
            return
        image.draft(None, (max(1, width // 8), max(1, height // 8)))
    elif width * height > decode_pixels:
        if image.format == "PNG":
            try:
                image.verify()
            except Exception as exc:
                raise ImageDecodeError(_TRUNCATED) from exc
        return
    _load_pixels(image, max_pixels)


def _orientation(image: Image.Image, file_exif: _FileExif, notes: list[str]) -> int | None:
    """The EXIF orientation to apply (2-8), or None; a damaged block or an absurd value is
    ignored, with a note. The EXIF is read here rather than by Pillow's getexif(), whose only
    sign of damage is a warning (warnings cannot be caught per thread), and which would decode
    a whole PNG to find an eXIf chunk after the pixels."""
    reading = _exif_reading(image, file_exif)
    if reading is None:
        return None
    if reading.damaged:
        notes.append(_CORRUPT_EXIF_NOTE)
    orientation = reading.value
    if orientation is None:
        orientation = _xmp_orientation(image.info)
    if orientation is None or orientation == 1:
        return None
    if not isinstance(orientation, int) or not 2 <= orientation <= 8:
        notes.append(f"the EXIF orientation value {orientation!r} is not valid and was ignored")
        return None
    return orientation


def _file_exif(image: Image.Image, data: bytes) -> _FileExif:
    if image.format == "TIFF":
        return _FileExif(tiff=container.tiff_orientation(data))
    if image.format == "PNG":
        return _FileExif(png_chunk=container.png_chunk(data, b"eXIf"))
    return _FileExif()


def _exif_reading(image: Image.Image, file_exif: _FileExif) -> container.ExifOrientation | None:
    """The EXIF block where Pillow's getexif() would look for it, read; None when absent."""
    if file_exif.tiff is not None:
        return file_exif.tiff
    exif = image.info.get("exif")
    if exif is None and image.format == "PNG":
        exif = file_exif.png_chunk
    raw_profile = image.info.get("Raw profile type exif")
    if exif is None and isinstance(raw_profile, str):
        # ImageMagick's hex dump in a PNG text chunk: three header lines, then the hex.
        try:
            exif = bytes.fromhex("".join(raw_profile.split("\n")[3:]))
        except ValueError:
            return container.ExifOrientation(damaged=True, value=None)
    if not isinstance(exif, (bytes, bytearray)):
        return container.ExifOrientation(damaged=False, value=None)
    return container.exif_orientation(bytes(exif))


def _xmp_orientation(info: dict[str, object]) -> int | None:
    """Pillow's fallback when the EXIF has no orientation: tiff:Orientation in the XMP."""
    for key in ("XML:com.adobe.xmp", "xmp"):
        xmp = info.get(key)
        if isinstance(xmp, str):
            xmp = xmp.encode("utf-8", "replace")
        if isinstance(xmp, bytes) and xmp:
            match = re.search(rb'tiff:Orientation(="|>)([0-9])', xmp)
            return int(match[2]) if match else None
    return None


def _rgb_profile(image: Image.Image, notes: list[str]) -> bytes | None:
    """The ICC profile, if it describes RGB: a grey or CMYK one would be wrong attached to
    the RGB pixels we return."""
    icc_profile = image.info.get("icc_profile") or None
    if icc_profile is not None and icc_profile[16:20] != b"RGB ":
        if image.mode == "CMYK":
            notes.append("the CMYK colour profile was not applied; colours may differ slightly")
        icc_profile = None
    return icc_profile


def _not_an_image(stream: BinaryIO) -> str:
    """Why Pillow could not open the bytes, from what they look like (see sniff.py)."""
    stream.seek(0)
    head = stream.read(sniff.HEAD_BYTES)
    if sniff.looks_like_ours(head):
        return _TRUNCATED
    return sniff.not_supported(head, _SUPPORTED_FOR_PEOPLE)
