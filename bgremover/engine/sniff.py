"""What a file that the decoder cannot open looks like, said for people.

Pure functions of the file's first bytes (HEAD_BYTES of them), without Pillow: whether they
start like one of the formats we read (then the file is damaged, and the decoder says
"truncated or corrupt"), and otherwise what they are (a PDF, an archive, a web page, an SVG
drawing, a video, text) for the "Not a supported image format" message.
"""

from __future__ import annotations

import codecs

HEAD_BYTES = 4096

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


def looks_like_ours(head: bytes) -> bool:
    """Whether the bytes start like JPEG, PNG, GIF, TIFF, WebP, BMP, HEIF or AVIF."""
    return (
        head.startswith(_OUR_SIGNATURES)
        or (head[:4] == b"RIFF" and head[8:12] == b"WEBP")
        or looks_like_bmp(head)
        or (head[4:8] == b"ftyp" and head[8:12] in _HEIF_BRANDS)
    )


def looks_like_bmp(head: bytes) -> bool:
    """Plenty of text starts with "BM" too; a BMP then has a known info-header size."""
    return (
        head[:2] == b"BM"
        and len(head) >= 18
        and int.from_bytes(head[14:18], "little") in (12, 40, 52, 56, 64, 108, 124)
    )


def not_supported(head: bytes, supported: str) -> str:
    """The message for bytes that are no image we read; ``supported`` lists the formats."""
    if head[4:8] == b"ftyp":
        return unsupported("video or other media file", supported)
    description = describe(head)
    if description == "SVG drawing":
        return unsupported(
            description, supported, "Vector drawings cannot be read: export it as PNG first."
        )
    return unsupported(description, supported)


def describe(head: bytes) -> str:
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


def unsupported(description: str, supported: str, hint: str = "") -> str:
    hint = f" {hint}" if hint else ""
    return (
        f"Not a supported image format (got: {description}).{hint} Supported formats: {supported}."
    )
