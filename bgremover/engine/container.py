"""How image files are laid out: where the image's own data ends, how many frames or pages a
file holds, and the EXIF orientation, read from the bytes without decoding any pixels.

Every function here is pure and meant for untrusted input: it takes the whole file as bytes,
runs in time linear in its size (or bounded by a count it is given), and answers ``None`` (or
"damaged") for anything it cannot make sense of instead of raising. The decoder (Pillow) stays
the judge of whether the pixels can be read; these walks only find structure that Pillow either
does not expose (where an image ends) or finds too slowly (TIFF pages, GIF frames).
"""

from __future__ import annotations

import re
import struct
from collections.abc import Iterator
from typing import NamedTuple

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
_JPEG_SOI = b"\xff\xd8"
_JPEG_EOI = 0xD9
_JPEG_SOS = 0xDA
# In entropy-coded data FF00 is a stuffed FF byte, FFD0-FFD7 are restart markers and FFFF is
# fill: any other FFxx is the marker that ends the scan.
_MARKER_AFTER_SCAN = re.compile(rb"\xff[^\x00\xd0-\xd7\xff]")
_GIF_TRAILER = 0x3B
_GIF_EXTENSION = 0x21
_GIF_IMAGE = 0x2C


def find_image_end(pillow_format: str, data: bytes) -> int | None:
    """Where the image's own data ends in ``data``, by Pillow format name; None when unknown.

    For JPEG (and MPO) this is the end of the first image: what follows may be a camera's
    extra views or the video of a "motion photo". TIFF offsets may point anywhere: None.
    """
    finders = {
        "PNG": png_end,
        "JPEG": jpeg_end,
        "MPO": jpeg_end,
        "GIF": gif_end,
        "WEBP": riff_end,
        "HEIF": isobmff_end,
        "AVIF": isobmff_end,
        "BMP": bmp_end,
    }
    finder = finders.get(pillow_format)
    return finder(data) if finder is not None else None


# --- PNG --------------------------------------------------------------------------------------


def _png_chunks(data: bytes) -> Iterator[tuple[bytes, int, int]]:
    """(type, start of the chunk's data, end of the whole chunk) for each complete chunk."""
    if not data.startswith(PNG_SIGNATURE):
        return
    position = len(PNG_SIGNATURE)
    while position + 12 <= len(data):
        length, kind = struct.unpack_from(">I4s", data, position)
        end = position + 12 + length
        if length > 0x7FFF_FFFF or end > len(data):
            return
        yield kind, position + 8, end
        if kind == b"IEND":
            return
        position = end


def png_end(data: bytes) -> int | None:
    """The end of the IEND chunk; None when the chunks never reach one."""
    for kind, _, end in _png_chunks(data):
        if kind == b"IEND":
            return end
    return None


def png_chunk(data: bytes, kind: bytes) -> bytes | None:
    """The data of the first chunk of this type, wherever it is (eXIf may follow the pixels)."""
    for found, start, end in _png_chunks(data):
        if found == kind:
            return data[start : end - 4]
    return None


# --- JPEG -------------------------------------------------------------------------------------


def jpeg_end(data: bytes) -> int | None:
    """The end of the first image's EOI marker, walking segments by their lengths.

    APPn segments are skipped whole (an EXIF thumbnail holds its own SOI/EOI), and so is the
    entropy-coded data after each SOS (progressive files have several). Bytes between segments
    that are not a marker are skipped, as libjpeg does. None when no EOI is reached.
    """
    if not data.startswith(_JPEG_SOI):
        return None
    size = len(data)
    position = len(_JPEG_SOI)
    while True:
        position = data.find(b"\xff", position)
        if position < 0:
            return None
        while position + 1 < size and data[position + 1] == 0xFF:
            position += 1  # fill bytes before a marker
        if position + 1 >= size:
            return None
        marker = data[position + 1]
        if marker == _JPEG_EOI:
            return position + 2
        if marker == 0xD8:
            return None  # a second SOI before the first image ended: libjpeg refuses it too
        if marker in (0x00, 0x01) or 0xD0 <= marker <= 0xD7:
            position += 2  # garbage (FF00 outside a scan), or a marker without a length
            continue
        if position + 4 > size:
            return None
        (length,) = struct.unpack_from(">H", data, position + 2)
        segment_end = position + 2 + length
        if length < 2 or segment_end > size:
            return None
        if marker != _JPEG_SOS:
            position = segment_end
            continue
        after_scan = _MARKER_AFTER_SCAN.search(data, segment_end)
        if after_scan is None:
            return None
        position = after_scan.start()


# --- GIF --------------------------------------------------------------------------------------


class GifLayout(NamedTuple):
    frames: int  # image descriptors seen, counting stopped one past the limit
    end: int | None  # end of the trailer byte; None when not reached


def gif_layout(data: bytes, max_frames: int) -> GifLayout:
    """Count frames (stopping once there are more than ``max_frames``) and find the trailer."""
    size = len(data)
    if size < 13 or data[:6] not in (b"GIF87a", b"GIF89a"):
        return GifLayout(0, None)
    position = 13 + _colour_table_size(data[10])
    frames = 0
    while position < size:
        block = data[position]
        if block == _GIF_TRAILER:
            return GifLayout(frames, position + 1)
        if block == _GIF_EXTENSION:
            after = _skip_sub_blocks(data, position + 2)
        elif block == _GIF_IMAGE:
            frames += 1
            if frames > max_frames or position + 10 > size:
                return GifLayout(frames, None)
            table = _colour_table_size(data[position + 9])
            # Descriptor (10 bytes), local colour table, LZW minimum code size, then data.
            after = _skip_sub_blocks(data, position + 10 + table + 1)
        else:
            return GifLayout(frames, None)
        if after is None:
            return GifLayout(frames, None)
        position = after
    return GifLayout(frames, None)


def gif_end(data: bytes) -> int | None:
    return gif_layout(data, max_frames=len(data)).end


def _colour_table_size(flags: int) -> int:
    return 3 << ((flags & 0x07) + 1) if flags & 0x80 else 0


def _skip_sub_blocks(data: bytes, position: int) -> int | None:
    """The position after a chain of sub-blocks and its zero terminator; None if cut short."""
    size = len(data)
    while position < size:
        length = data[position]
        position += 1 + length
        if length == 0:
            return position
    return None


# --- TIFF -------------------------------------------------------------------------------------


class _TiffLayout(NamedTuple):
    endian: str  # "<" or ">"
    big: bool  # BigTIFF: 8-byte counts and offsets, 20-byte entries
    first_ifd: int


def _tiff_layout(data: bytes) -> _TiffLayout | None:
    """The byte order, kind and first IFD offset, for the headers Pillow accepts."""
    if data[:2] not in (b"II", b"MM") or len(data) < 8:
        return None
    endian = "<" if data[:2] == b"II" else ">"
    (version,) = struct.unpack_from(endian + "H", data, 2)
    if version == 43:
        if len(data) < 16:
            return None
        return _TiffLayout(endian, True, struct.unpack_from(endian + "Q", data, 8)[0])
    # 42, or its byte-swapped form, which Pillow reads as classic TIFF too.
    if version not in (42, 0x2A00):
        return None
    return _TiffLayout(endian, False, struct.unpack_from(endian + "I", data, 4)[0])


def _ifd_shape(layout: _TiffLayout) -> tuple[str, int, str]:
    """(struct format of the entry count, size of one entry, format of an offset)."""
    return ("Q", 20, "Q") if layout.big else ("H", 12, "I")


def tiff_page_count(data: bytes, limit: int) -> int:
    """The number of pages (IFDs) in a TIFF, counting no further than ``limit``.

    Each step reads one IFD's entry count and next-IFD pointer, never its entries; a loop in
    the chain or a pointer out of the file ends the count.
    """
    layout = _tiff_layout(data)
    if layout is None:
        return 0
    count_format, entry_size, offset_format = _ifd_shape(layout)
    count_size = struct.calcsize(count_format)
    offset_size = struct.calcsize(offset_format)
    pages = 0
    seen: set[int] = set()
    offset = layout.first_ifd
    while offset and pages < limit and offset not in seen:
        if offset + count_size > len(data):
            break
        seen.add(offset)
        pages += 1
        (entries,) = struct.unpack_from(layout.endian + count_format, data, offset)
        next_pointer = offset + count_size + entries * entry_size
        if next_pointer + offset_size > len(data):
            break
        (offset,) = struct.unpack_from(layout.endian + offset_format, data, next_pointer)
    return pages


# --- EXIF -------------------------------------------------------------------------------------

_EXIF_PREFIX = re.compile(rb"^(Exif\x00\x00){1,2}")
_ORIENTATION_TAG = 0x0112
# Byte sizes of the TIFF field types Pillow reads; entries of other types are skipped.
_TYPE_SIZES = {
    1: 1,
    2: 1,
    3: 2,
    4: 4,
    5: 8,
    6: 1,
    7: 1,
    8: 2,
    9: 4,
    10: 8,
    11: 4,
    12: 8,
    13: 4,
    16: 8,
}
# Types Pillow reads as integers (it gives BYTE as bytes), with their struct codes.
_INTEGER_TYPES = {3: "H", 4: "I", 6: "b", 8: "h", 9: "i", 13: "I", 16: "Q"}


class ExifOrientation(NamedTuple):
    damaged: bool  # an entry or its data lies outside the block: Pillow would warn and skip
    value: int | bytes | None  # int for integer tags; raw bytes for another type; None: absent


def exif_orientation(exif: bytes) -> ExifOrientation:
    """The orientation tag of an EXIF block (as stored in JPEG, PNG, WebP, HEIF), and whether
    the block's first IFD is damaged. Only what Pillow's getexif() reads is checked."""
    block = _EXIF_PREFIX.sub(b"", exif, count=1)
    if not block:
        return ExifOrientation(False, None)
    layout = _tiff_layout(block)
    if layout is None or layout.big:
        return ExifOrientation(True, None)  # Pillow cannot read these as EXIF either
    return _ifd_orientation(block, layout, layout.first_ifd)


def tiff_orientation(data: bytes) -> ExifOrientation:
    """The orientation tag of a TIFF file's first page, and whether that IFD is damaged."""
    layout = _tiff_layout(data)
    if layout is None:
        return ExifOrientation(True, None)
    return _ifd_orientation(data, layout, layout.first_ifd)


def _ifd_orientation(data: bytes, layout: _TiffLayout, offset: int) -> ExifOrientation:
    """Walk one IFD as Pillow's ImageFileDirectory_v2.load does, noting what it would warn
    about: entries or tag data beyond the block, more tag data than the block holds, or an
    orientation with several values."""
    count_format, entry_size, offset_format = _ifd_shape(layout)
    endian = layout.endian
    inline_size = 8 if layout.big else 4
    start = offset + struct.calcsize(count_format)
    if start > len(data):
        return ExifOrientation(True, None)
    (entries,) = struct.unpack_from(endian + count_format, data, offset)
    entries_end = start + entries * entry_size
    if entries_end + struct.calcsize(offset_format) > len(data):
        return ExifOrientation(True, None)
    entry_format = endian + ("HHQ" if layout.big else "HHI")
    damaged = False
    seen: set[int] = set()
    total_size = 0
    orientation: int | bytes | None = None
    for entry in range(start, entries_end, entry_size):
        tag, field_type, count = struct.unpack_from(entry_format, data, entry)
        unit = _TYPE_SIZES.get(field_type)
        if tag in seen or unit is None:
            continue
        size = count * unit
        value_at = entry + entry_size - inline_size
        if size > inline_size:
            (value_at,) = struct.unpack_from(endian + offset_format, data, value_at)
            total_size += size
            if total_size > len(data) or value_at + size > len(data):
                damaged = True
                continue
        if size == 0:
            continue
        seen.add(tag)
        if tag == _ORIENTATION_TAG:
            if count != 1 and field_type in _INTEGER_TYPES:
                damaged = True  # Pillow warns "had too many entries"
            elif field_type in _INTEGER_TYPES and count == 1:
                code = endian + _INTEGER_TYPES[field_type]
                (orientation,) = struct.unpack_from(code, data, value_at)
            else:
                orientation = bytes(data[value_at : value_at + size])
    return ExifOrientation(damaged, orientation)


# --- RIFF (WebP), ISO-BMFF (HEIF, AVIF), BMP ---------------------------------------------------


def riff_end(data: bytes) -> int | None:
    """The end of the RIFF container by its declared size; None if it claims more than is here."""
    if len(data) < 12 or data[:4] != b"RIFF":
        return None
    end = 8 + struct.unpack_from("<I", data, 4)[0]
    return end if end <= len(data) else None


def isobmff_end(data: bytes) -> int | None:
    """The end of the last top-level box, walking box headers from ftyp.

    The walk stops at a header that cannot be a box (its type is not four printable ASCII
    characters, or it is shorter than its header): what follows is not part of the image. A
    box that runs past the end of the file means truncation (or lying data): None.
    """
    if len(data) < 8 or data[4:8] != b"ftyp":
        return None
    size = len(data)
    position = 0
    while position + 8 <= size:
        box_size, kind = struct.unpack_from(">I4s", data, position)
        if not all(0x20 <= byte <= 0x7E for byte in kind):
            return position
        header = 8
        if box_size == 0:
            return size  # the last box runs to the end of the file
        if box_size == 1:
            if position + 16 > size:
                return None
            (box_size,) = struct.unpack_from(">Q", data, position + 8)
            header = 16
        if box_size < header:
            return position
        if position + box_size > size:
            return None
        position += box_size
    return position


_BMP_UNCOMPRESSED = (0, 3, 6)  # BI_RGB, BI_BITFIELDS, BI_ALPHABITFIELDS
_BMP_PROFILE_EMBEDDED = b"MBED"[::-1]  # LCS_PROFILE_EMBEDDED, a little-endian FOURCC


def bmp_end(data: bytes) -> int | None:
    """The end of a BMP: its declared file size where the header agrees with it, else (for
    uncompressed bitmaps) the end of the pixel rows; None when neither can be trusted.

    Writers are known to leave the declared size at 0 or wrong; uncompressed rows have a size
    the header fixes exactly, and a V5 header may place an ICC profile after them.
    """
    if len(data) < 26 or data[:2] != b"BM":
        return None
    declared, _, pixel_offset, header_size = struct.unpack_from("<IIII", data, 2)
    if header_size == 12:
        width, height, _, bits = struct.unpack_from("<HhHH", data, 18)
        compression, image_size = 0, 0
    elif header_size >= 40 and len(data) >= 14 + 40:
        width, height, _, bits, compression, image_size = struct.unpack_from("<iiHHII", data, 18)
    else:
        return None
    if bits == 0 or width == 0:
        return None
    if compression in _BMP_UNCOMPRESSED:
        row = (abs(width) * bits + 31) // 32 * 4
        minimum = pixel_offset + row * abs(height)
    else:
        minimum = pixel_offset + image_size
    if header_size >= 124 and len(data) >= 14 + 124:
        colour_space = data[14 + 56 : 14 + 60]
        profile_at, profile_size = struct.unpack_from("<II", data, 14 + 112)
        if colour_space == _BMP_PROFILE_EMBEDDED:
            minimum = max(minimum, 14 + profile_at + profile_size)
    if minimum > len(data):
        return None
    if minimum <= declared <= len(data):
        return declared
    return minimum if compression in _BMP_UNCOMPRESSED else None
