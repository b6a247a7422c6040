"""The hostile and ordinary files the scenarios upload, written without the server's code."""

from __future__ import annotations

import io
import struct
import zlib

TIFF_PAGES = 60_000
# bombs: just under the default 50 MP upload limit, so the old server accepts them all.
BOMB_SIDE = 7000


def many_page_tiff(pages: int = TIFF_PAGES) -> bytes:
    """A little-endian TIFF of ``pages`` 1×1 bilevel pages, one IFD each (54 bytes a page).

    Written by hand because Pillow's ``save_all`` takes minutes for 60,000 pages. Every page
    points at the same single pixel byte after the last IFD; the chain ends with offset 0."""
    ifd_size = 2 + 4 * 12 + 4
    first = 8
    pixel = first + pages * ifd_size
    ifd = struct.Struct("<H" + "HHII" * 4 + "I")
    out = io.BytesIO()
    out.write(struct.pack("<2sHI", b"II", 42, first))
    for page in range(pages):
        following = first + (page + 1) * ifd_size if page + 1 < pages else 0
        out.write(
            ifd.pack(
                4,
                *(256, 3, 1, 1),  # ImageWidth, SHORT
                *(257, 3, 1, 1),  # ImageLength, SHORT
                *(273, 4, 1, pixel),  # StripOffsets, LONG
                *(279, 4, 1, 1),  # StripByteCounts, LONG
                following,
            )
        )
    out.write(b"\x00")
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def gradient_png(width: int = BOMB_SIDE, height: int = BOMB_SIDE) -> bytes:
    """An RGB PNG with a left-to-right colour gradient, small on disk, huge decoded.

    The first row is stored plain, every other row with the "Up" filter (all zero bytes),
    so 147 MB of pixels at 7000×7000 deflate to a few hundred KB without ever being held."""
    ramp = bytes(x * 255 // max(1, width - 1) for x in range(width))
    first_row = bytes(channel for r in ramp for channel in (r, 128, 255 - r))
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(b"\x00" + first_row)]
    up_rows = (b"\x02" + bytes(3 * width)) * 64
    remaining = height - 1
    while remaining > 0:
        rows = min(64, remaining)
        parts.append(compressor.compress(up_rows[: rows * (3 * width + 1)]))
        remaining -= rows
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def small_jpeg(side: int, variant: int = 0) -> bytes:
    """A small photo-like JPEG: a disc on a two-colour background; ``variant`` changes both."""
    from PIL import Image, ImageDraw  # the only third-party import: for encoding test files

    hue = (variant * 67) % 256
    image = Image.new("RGB", (side, side), (hue, 200 - hue // 2, 90))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, side // 2, side, side), fill=(40, 60 + hue // 3, 120))
    inset = side // 4 + variant % 3
    draw.ellipse((inset, inset, side - inset, side - inset), fill=(230, 120, 255 - hue))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()
