"""Stage "decoding": turn an uploaded file into 8-bit RGB (+ alpha) arrays for the network.

Everything Pillow raises or warns about while reading untrusted input ends here: errors become
ImageDecodeError / ImageTooLargeError with a message meant for people, and warnings (corrupt
EXIF, decompression-bomb hints) are caught so that none escape; the useful ones become notes.
(warnings.catch_warnings swaps process-wide state: decodes running at once in threads of one
process can misroute each other's warnings, so run them in worker processes or one at a time.)
"""

from __future__ import annotations

import codecs
import io
import logging
import os
import threading
import warnings
from collections.abc import Iterator, Sequence
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np
import pillow_heif
from PIL import ExifTags, Image, ImageOps

from bgremover.engine.errors import ImageDecodeError, ImageTooLargeError

pillow_heif.register_heif_opener()
Image.init()
# Pillow logs about hostile files (e.g. "More samples per pixel than can be decoded") without a
# handler of its own, so where logging is not configured Python prints them to stderr. Records
# still propagate to whatever handlers the application sets up.
logging.getLogger("PIL").addHandler(logging.NullHandler())

# Only these plugins ever see the bytes: Pillow knows dozens of formats (EPS would even run
# Ghostscript), and people upload photos. Multi-picture camera JPEGs come through "JPEG" as
# format "MPO"; AVIF is there when Pillow was built with it.
_WANTED_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "BMP", "TIFF", "HEIF", "AVIF")
SUPPORTED_FORMATS: tuple[str, ...] = tuple(f for f in _WANTED_FORMATS if f in Image.OPEN)
_SUPPORTED_FOR_PEOPLE = "JPEG, PNG, WebP, GIF, BMP, TIFF, HEIC/HEIF" + (
    ", AVIF" if "AVIF" in SUPPORTED_FORMATS else "")

_TRUNCATED = "The image file is truncated or corrupt"
_CORRUPT_EXIF_NOTE = "the photo's EXIF metadata is damaged and was ignored"
_WIDE_GREY_MODES = frozenset({"I;16", "I;16L", "I;16B", "I;16N", "I"})


@dataclass
class DecodedImage:
    rgb: np.ndarray            # H×W×3 uint8 RGB, EXIF orientation applied
    alpha: np.ndarray | None   # H×W uint8 when the source has transparency, else None
    icc_profile: bytes | None  # the source's RGB ICC profile (kept for the output)
    format: str                # Pillow format name: "JPEG", "PNG", "WEBP", "HEIF", ...
    frame_count: int = 1       # >1: animation, TIFF pages or HEIF images; the first is used
    notes: list[str] = field(default_factory=list)


def decode_image(source: bytes | str | os.PathLike[str] | BinaryIO, *,
                 max_pixels: int | None = 50_000_000,
                 max_bytes: int | None = None) -> DecodedImage:
    """Decode the first frame of an image file into 8-bit RGB and (when present) alpha.

    ``source`` is the file's bytes, a path, or a binary file object (read from its start).
    The pixel limit is checked from the header before any pixel data is decoded.
    """
    with ExitStack() as cleanup:
        stream = _open_stream(source, max_bytes, cleanup)
        notes: list[str] = []
        with warnings.catch_warnings(record=True) as caught, _pillow_limit_not_below(max_pixels):
            warnings.simplefilter("always")
            image = _open_image(stream, max_pixels)
            cleanup.callback(image.close)
            frame_count = _first_frame(image, notes)
            _load_pixels(image, max_pixels)
            oriented = _apply_orientation(image, notes)
            rgb, alpha, icc_profile = _to_rgb_and_alpha(oriented, notes)
        if any(_is_exif_warning(w.message) for w in caught) and _CORRUPT_EXIF_NOTE not in notes:
            notes.append(_CORRUPT_EXIF_NOTE)
        return DecodedImage(rgb=rgb, alpha=alpha, icc_profile=icc_profile,
                            format=image.format or "unknown", frame_count=frame_count,
                            notes=notes)


def _open_stream(source: bytes | str | os.PathLike[str] | BinaryIO, max_bytes: int | None,
                 cleanup: ExitStack) -> BinaryIO:
    """A seekable binary stream over the whole input, after the empty and byte-size checks."""
    if isinstance(source, (bytes, bytearray, memoryview)):
        stream: BinaryIO = io.BytesIO(source)
        size = len(stream.getbuffer())
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
        raise TypeError(f"decode_image() takes bytes, a path or a binary file, not "
                        f"{type(source).__name__}")
    if size == 0:
        raise ImageDecodeError("The file is empty")
    if max_bytes is not None and size > max_bytes:
        raise ImageTooLargeError(f"The file is {_megabytes(size)}; the limit is "
                                 f"{_megabytes(max_bytes)}")
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
            raise TypeError("decode_image() needs a file opened in binary mode") from None
        return io.BytesIO(data), len(data)


@contextmanager
def _pillow_limit_not_below(max_pixels: int | None) -> Iterator[None]:
    """Keep Pillow's process-wide bomb limit from refusing what the explicit limit allows.

    Below Pillow's own limit (the default 50 MP is) nothing changes: our check is the stricter
    one and Pillow's warning is caught. Above it, or with no limit, Pillow's limit is raised for
    the duration of this decode; the lock keeps concurrent decodes from restoring a stale value.
    """
    pillow_limit = Image.MAX_IMAGE_PIXELS
    if pillow_limit is None or (max_pixels is not None and max_pixels <= pillow_limit):
        yield
        return
    with _PILLOW_LIMIT_LOCK:
        saved = Image.MAX_IMAGE_PIXELS
        Image.MAX_IMAGE_PIXELS = max_pixels
        try:
            yield
        finally:
            Image.MAX_IMAGE_PIXELS = saved


_PILLOW_LIMIT_LOCK = threading.Lock()


def _open_image(stream: BinaryIO, max_pixels: int | None) -> Image.Image:
    """Read the header only (Pillow opens lazily) and refuse oversized images right there."""
    try:
        image = Image.open(stream, formats=SUPPORTED_FORMATS)
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(_too_many_pixels(None, max_pixels)) from exc
    except Exception as exc:
        # Unidentified, or a plugin choked on a header: say what the bytes look like.
        raise ImageDecodeError(_not_an_image(stream)) from exc
    _check_pixels(image.size, max_pixels)
    return image


def _check_pixels(size: tuple[int, int], max_pixels: int | None) -> None:
    if max_pixels is not None and size[0] * size[1] > max_pixels:
        raise ImageTooLargeError(_too_many_pixels(size, max_pixels))


def _too_many_pixels(size: tuple[int, int] | None, max_pixels: int | None) -> str:
    limit = f"; the limit is {_megapixels(max_pixels)}" if max_pixels else ""
    if size is None:
        return f"The image has too many pixels to decode safely{limit}. Resize it and try again."
    width, height = size
    return (f"The image is {width}×{height} pixels ({_megapixels(width * height)}){limit}. "
            "Resize it and try again.")


def _megapixels(pixels: int) -> str:
    return f"{pixels / 1e6:.3g} megapixels"


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.3g} MB" if size >= 100_000 else f"{size:,} bytes"


def _first_frame(image: Image.Image, notes: list[str]) -> int:
    """The frame count; the image is left on its first frame, with a note when there are more."""
    if image.format == "MPO":
        # A multi-picture JPEG's extra images are previews, depth or HDR gain maps of the one
        # photo, not frames of it.
        return 1
    try:
        frame_count = int(getattr(image, "n_frames", 1))
    except Exception:
        # A damaged later frame must not cost the first one, which is all we use.
        frame_count = 1
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
    return frame_count


def _load_pixels(image: Image.Image, max_pixels: int | None) -> None:
    try:
        image.load()
    except Image.DecompressionBombError as exc:
        raise ImageTooLargeError(_too_many_pixels(None, max_pixels)) from exc
    except MemoryError as exc:
        raise ImageTooLargeError("Not enough memory to decode this image") from exc
    except Exception as exc:
        raise ImageDecodeError(_TRUNCATED) from exc
    # A GIF frame may be larger than the size its header announced.
    _check_pixels(image.size, max_pixels)


def _apply_orientation(image: Image.Image, notes: list[str]) -> Image.Image:
    """Rotate/flip as the EXIF orientation says; a damaged or absurd tag is ignored, noted."""
    try:
        orientation = image.getexif().get(ExifTags.Base.Orientation)
    except Exception:
        notes.append(_CORRUPT_EXIF_NOTE)
        return image
    if orientation is None or orientation == 1:
        return image
    if not isinstance(orientation, int) or not 2 <= orientation <= 8:
        notes.append(f"the EXIF orientation value {orientation!r} is not valid and was ignored")
        return image
    try:
        return ImageOps.exif_transpose(image)
    except Exception:
        notes.append(_CORRUPT_EXIF_NOTE)
        return image


def _is_exif_warning(message: Warning | str) -> bool:
    text = str(message)
    return "EXIF" in text.upper() or "Metadata Warning" in text


def _to_rgb_and_alpha(image: Image.Image, notes: list[str]
                      ) -> tuple[np.ndarray, np.ndarray | None, bytes | None]:
    icc_profile = image.info.get("icc_profile") or None
    # Only an RGB profile describes the RGB pixels we return; a grey or CMYK one would be wrong
    # attached to them.
    if icc_profile is not None and icc_profile[16:20] != b"RGB ":
        if image.mode == "CMYK":
            notes.append("the CMYK colour profile was not applied; colours may differ slightly")
        icc_profile = None
    has_alpha = image.has_transparency_data
    if image.mode in _WIDE_GREY_MODES or image.mode == "F":
        grey, alpha = _wide_grey_to_8bit(image, has_alpha)
        return np.repeat(grey[:, :, None], 3, axis=2), alpha, icc_profile
    try:
        converted = image.convert("RGBA" if has_alpha else "RGB")
    except (ValueError, OSError) as exc:
        raise ImageDecodeError(f"Unsupported pixel format ({image.mode})") from exc
    pixels = np.asarray(converted)
    if has_alpha:
        return np.ascontiguousarray(pixels[:, :, :3]), pixels[:, :, 3].copy(), icc_profile
    return pixels.copy(), None, icc_profile


def _wide_grey_to_8bit(image: Image.Image, has_alpha: bool
                       ) -> tuple[np.ndarray, np.ndarray | None]:
    """16-bit and 32-bit integer greys keep their top byte (65535 → 255, 256 → 1): Pillow's
    own convert("L") clips them to 255 instead. "I" is read as 16-bit, as 16-bit PNG/TIFF
    usually arrive. Floats in 0..1 are scaled to 0..255; other float ranges are clipped."""
    values = np.asarray(image)
    if image.mode == "F":
        values = np.nan_to_num(values.astype(np.float32), nan=0.0, posinf=255.0, neginf=0.0)
        if values.size and values.min() >= 0.0 and values.max() <= 1.0:
            values = values * 255.0
        grey = np.clip(np.rint(values), 0, 255).astype(np.uint8)
    else:
        grey = (np.clip(values.astype(np.int64), 0, 65_535) >> 8).astype(np.uint8)
    alpha = None
    if has_alpha:
        transparent_value = image.info.get("transparency")
        alpha = np.where(values == transparent_value, 0, 255).astype(np.uint8)
    return grey, alpha


_SIGNATURES: tuple[tuple[bytes, str], ...] = (
    (b"%PDF", "PDF document"),
    (b"PK\x03\x04", "ZIP archive or Office document"),
    (b"\x1f\x8b", "gzip archive"),
    (b"Rar!", "RAR archive"),
    (b"7z\xbc\xaf", "7-Zip archive"),
    (b"8BPS", "Photoshop document"),
    (b"\x00\x00\x01\x00", "Windows icon"),
    (b"\x7fELF", "program"),
    (b"MZ", "Windows program"),
    (b"ID3", "MP3 audio"),
    (b"OggS", "Ogg audio or video"),
    (b"\x1aE\xdf\xa3", "Matroska/WebM video"),
)
# Signatures of the formats we read: such a file that Pillow still cannot open is broken.
_OUR_SIGNATURES = (b"\xff\xd8\xff", b"\x89PNG", b"GIF8", b"II*\x00", b"MM\x00*")
_HEIF_BRANDS = (b"heic", b"heix", b"mif1", b"msf1", b"heim", b"heis", b"avif", b"avis")


def _not_an_image(stream: BinaryIO) -> str:
    stream.seek(0)
    head = stream.read(4096)
    if (head.startswith(_OUR_SIGNATURES) or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
            or _looks_like_bmp(head)):
        return _TRUNCATED
    if head[4:8] == b"ftyp":
        if head[8:12] in _HEIF_BRANDS:
            return _TRUNCATED
        return _unsupported("video or other media file")
    description = _describe(head)
    if description == "SVG drawing":
        return _unsupported(description, "Vector drawings cannot be read: export it as PNG first.")
    return _unsupported(description)


def _looks_like_bmp(head: bytes) -> bool:
    """"BM" alone also starts plenty of text; a BMP then has a known info-header size."""
    return (head[:2] == b"BM" and len(head) >= 18
            and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124))


def _describe(head: bytes) -> str:
    for signature, description in _SIGNATURES:
        if head.startswith(signature):
            return description
    if head.startswith(b"RIFF"):
        return "audio or video file (RIFF)"
    text = head.lstrip(b"\xef\xbb\xbf \t\r\n").lower()
    if text.startswith((b"<!doctype html", b"<html")):
        return "HTML page"  # even with an inline <svg> inside
    if b"<svg" in text:
        return "SVG drawing"
    if b"<html" in text[:512]:
        return "HTML page"
    if text.startswith(b"<?xml"):
        return "XML document"
    try:
        # Incremental, so a character cut at the end of the sniffed block is not an error.
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "unrecognised data"
    return "text file" if b"\x00" not in head else "unrecognised data"


def _unsupported(description: str, hint: str = "") -> str:
    hint = f" {hint}" if hint else ""
    return (f"Not a supported image format (got: {description}).{hint} "
            f"Supported formats: {_SUPPORTED_FOR_PEOPLE}.")


# The authors' normalisation (u2net_test.py: RescaleT(320) + ToTensorLab(flag=0)).
NETWORK_SIZE = 320
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def to_network_input(images: Sequence[np.ndarray], size: int = NETWORK_SIZE) -> np.ndarray:
    """Float32 N×3×size×size batch: each H×W×3 uint8 photo squeezed to size×size (aspect
    ratio not kept, as in training), divided by its maximum, then ImageNet-normalised."""
    batch = np.empty((len(images), 3, size, size), dtype=np.float32)
    for index, rgb in enumerate(images):
        # Lanczos with a reducing gap: anti-aliased like the authors' resize, and a 12 MP
        # photo shrinks in tens of milliseconds (a box pre-reduction does most of the work).
        small = Image.fromarray(rgb).resize((size, size), Image.LANCZOS, reducing_gap=3.0)
        pixels = np.asarray(small, dtype=np.float32)
        pixels /= max(float(pixels.max()), 1.0)
        pixels -= _IMAGENET_MEAN
        pixels /= _IMAGENET_STD
        batch[index] = pixels.transpose(2, 0, 1)
    return batch
