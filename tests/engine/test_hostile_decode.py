"""Hostile files against decode_image and probe_image: frame and page bombs, oversized colour
profiles, data smuggled after the image, truncation a bounded probe must catch, memory and
time bounds, and concurrent decodes in threads of one process.

Warnings are errors here too, except those the decoder silences for the whole process.
"""

from __future__ import annotations

import io
import struct
import subprocess
import sys
import threading
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from PIL import Image

from bgremover.engine import container
from bgremover.engine.errors import ImageDecodeError, ImageTooLargeError
from bgremover.engine.preprocess import (
    MAX_FRAMES,
    MAX_ICC_BYTES,
    MAX_TRAILING_BYTES,
    PILLOW_MAX_IMAGE_PIXELS,
    PROBE_DECODE_PIXELS,
    SUPPORTED_FORMATS,
    ImageInfo,
    decode_image,
    ignore_pillow_warnings,
    probe_image,
)
from tests.fixtures import hostile

pytestmark = pytest.mark.filterwarnings("error")

REPO = Path(__file__).resolve().parents[2]
DECODERS = pytest.mark.parametrize("decode", [decode_image, probe_image], ids=["decode", "probe"])
TRUNCATED = "The image file is truncated or corrupt"


@pytest.fixture(autouse=True)
def _decoder_warning_filters() -> None:
    ignore_pillow_warnings()


def save(image: Image.Image, fmt: str, **params: object) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, fmt, **params)
    return buffer.getvalue()


def save_or_skip(image: Image.Image, fmt: str, **params: object) -> bytes:
    try:
        return save(image, fmt, **params)
    except (KeyError, OSError, ValueError) as exc:
        pytest.skip(f"no {fmt} encoder in this Pillow build: {exc}")


def noise(width: int, height: int, seed: int = 0) -> Image.Image:
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (height, width, 3), dtype=np.uint8))


def png_chunks(data: bytes) -> list[bytes]:
    """Each chunk of a PNG as its raw bytes (length, type, data, CRC)."""
    chunks, position = [], 8
    while position < len(data):
        (length,) = struct.unpack_from(">I", data, position)
        chunks.append(data[position : position + 12 + length])
        position += 12 + length
    return chunks


def png_chunk(kind: bytes, body: bytes) -> bytes:
    crc = struct.pack(">I", zlib.crc32(kind + body))
    return struct.pack(">I", len(body)) + kind + body + crc


# --- frames and pages ---------------------------------------------------------------------


def test_defaults():
    assert (MAX_FRAMES, MAX_ICC_BYTES, MAX_TRAILING_BYTES) == (1000, 1_048_576, 1_048_576)
    assert PROBE_DECODE_PIXELS == 4_000_000
    assert Image.MAX_IMAGE_PIXELS == PILLOW_MAX_IMAGE_PIXELS is not None


@DECODERS
def test_tiff_of_60000_pages_is_refused_in_well_under_a_second(decode):
    data = hostile.many_page_tiff()[1]
    assert len(data) < 4_000_000
    started = time.monotonic()
    with pytest.raises(ImageTooLargeError) as caught:
        decode(data)
    assert time.monotonic() - started < 0.5
    assert str(caught.value) == "The file holds more than 1000 frames or pages; the limit is 1000."


@DECODERS
def test_tiff_of_three_pages_uses_its_first_page_with_a_note(decode):
    result = decode(hostile.tiff_pages(3))
    assert result.frame_count == 3
    assert list(result.notes) == ["multi-page TIFF: first page used"]


def test_page_limit_is_the_callers_and_inclusive():
    data = hostile.tiff_pages(5)
    assert decode_image(data, max_frames=5).frame_count == 5
    with pytest.raises(ImageTooLargeError, match="more than 4 frames or pages; the limit is 4"):
        probe_image(data, max_frames=4)


@DECODERS
def test_gif_with_1001_frames_is_refused_1000_are_fine(decode):
    with pytest.raises(ImageTooLargeError, match="more than 1000 frames or pages"):
        decode(hostile.many_frame_gif()[1])
    assert decode(hostile.gif_frames(1000)).frame_count == 1000


@DECODERS
def test_gif_with_three_frames_uses_the_first_with_a_note(decode):
    result = decode(hostile.gif_frames(3))
    assert result.frame_count == 3
    assert list(result.notes) == ["animated GIF: first frame used"]


def test_apng_declared_frame_count_is_checked_without_walking_frames():
    """acTL declares 2**31 frames in a 1×1 PNG: refused from the declaration alone."""
    chunks = png_chunks(hostile.one_pixel()[1])
    actl = png_chunk(b"acTL", struct.pack(">II", 2**31, 0))
    data = b"\x89PNG\r\n\x1a\n" + chunks[0] + actl + b"".join(chunks[1:])
    with pytest.raises(ImageTooLargeError, match="more than 1000 frames"):
        probe_image(data)


# --- the declared canvas ------------------------------------------------------------------


def _animated_webp_with_canvas(width: int, height: int) -> bytes:
    """The fixture's 24×16 animation with its VP8X canvas enlarged; the frames stay small."""
    data = bytearray(hostile.animated_webp()[1])
    assert data[12:16] == b"VP8X"
    data[24:27] = (width - 1).to_bytes(3, "little")
    data[27:30] = (height - 1).to_bytes(3, "little")
    return bytes(data)


@DECODERS
def test_animated_webp_canvas_not_its_frames_is_checked_against_the_pixel_limit(decode):
    with pytest.raises(ImageTooLargeError, match=r"8000×8000 pixels \(64 megapixels\)"):
        decode(_animated_webp_with_canvas(8000, 8000))


def test_animated_webp_canvas_within_the_limit_is_probed():
    info = probe_image(_animated_webp_with_canvas(7000, 7000))
    assert (info.width, info.height, info.frame_count) == (7000, 7000, 3)
    assert info.notes == ("animated WebP: first frame used",)


# --- colour profiles ----------------------------------------------------------------------


@DECODERS
def test_8_mb_colour_profile_in_an_8x8_webp_is_refused(decode):
    with pytest.raises(ImageTooLargeError) as caught:
        decode(hostile.huge_icc_webp()[1])
    assert str(caught.value) == (
        "The image's embedded colour profile is 8.39 MB; the limit is 1.05 MB."
    )


def test_colour_profile_limit_is_the_callers():
    data = hostile.huge_icc_webp()[1]
    assert decode_image(data, max_icc_bytes=hostile.ICC_BOMB_BYTES).rgb.shape == (8, 8, 3)
    with pytest.raises(ImageTooLargeError, match="colour profile"):
        probe_image(
            save(Image.new("RGB", (4, 4)), "JPEG", icc_profile=b"x" * 5000), max_icc_bytes=4999
        )


@DECODERS
def test_png_profile_inflating_past_pillows_limit_is_refused_as_too_large(decode):
    """Pillow itself refuses an iCCP chunk that inflates past 1 MiB; say so, not "corrupt"."""
    profile = bytes(2 * 1024 * 1024)  # compresses to a few kB
    data = save(Image.new("RGB", (4, 4)), "PNG", icc_profile=profile)
    assert len(data) < 10_000
    with pytest.raises(ImageTooLargeError, match="embedded metadata .* too large"):
        decode(data)


# --- data after the image -----------------------------------------------------------------


@DECODERS
def test_1x1_png_with_5_mb_after_its_end_is_refused(decode):
    with pytest.raises(ImageTooLargeError) as caught:
        decode(hostile.png_trailing_payload()[1])
    assert str(caught.value) == (
        "The file holds 5.24 MB of other data after the end of the image; the limit is 1.05 MB."
    )


def test_png_with_10_bytes_after_its_end_is_accepted_and_says_where_it_ends():
    png = hostile.one_pixel()[1]
    info = probe_image(png + b"0123456789")
    assert info.image_end == len(png)
    assert decode_image(png + b"0123456789").rgb.tolist() == [[[10, 20, 30]]]
    with pytest.raises(ImageTooLargeError, match="10 bytes of other data.*limit is 9 bytes"):
        decode_image(png + b"0123456789", max_trailing_bytes=9)


def _encoded(fmt: str) -> bytes:
    image = noise(24, 16)
    if fmt in ("HEIF", "AVIF"):
        return save_or_skip(image, fmt, quality=90)
    return save(image, fmt)


TRAILING = bytes(MAX_TRAILING_BYTES + 1)


@pytest.mark.parametrize("fmt", ["PNG", "GIF", "WEBP", "BMP", "HEIF", "AVIF"])
def test_every_format_with_an_end_refuses_more_than_a_mib_after_it(fmt):
    if fmt not in SUPPORTED_FORMATS:
        pytest.skip(f"{fmt} is not supported by this Pillow build")
    image = _encoded(fmt)
    info = probe_image(image + b"tail")
    assert info.image_end == len(image)
    for decode in (decode_image, probe_image):
        with pytest.raises(ImageTooLargeError, match="after the end of the image"):
            decode(image + TRAILING)


def test_bmp_with_a_wrong_declared_size_ends_after_its_rows():
    image = bytearray(_encoded("BMP"))
    image[2:6] = bytes(4)  # some writers leave the file size at 0
    assert container.bmp_end(bytes(image)) == len(image)
    with pytest.raises(ImageTooLargeError, match="after the end of the image"):
        decode_image(bytes(image) + TRAILING)


def test_tiff_has_no_end_to_check():
    """TIFF offsets may point anywhere in the file: trailing data cannot be told apart."""
    image = _encoded("TIFF")
    assert probe_image(image + TRAILING).image_end is None


@DECODERS
def test_jpeg_with_a_3_mb_video_after_it_is_accepted(decode):
    decode(hostile.jpeg_motion_photo()[1])


def test_jpeg_image_end_is_the_end_of_the_photo_and_cutting_there_keeps_the_pixels():
    data = hostile.jpeg_motion_photo()[1]
    info = probe_image(data)
    assert info.image_end == len(data) - hostile.MOTION_VIDEO_BYTES
    assert data[info.image_end - 2 : info.image_end] == b"\xff\xd9"
    np.testing.assert_array_equal(decode_image(data[: info.image_end]).rgb, decode_image(data).rgb)


def test_jpeg_end_skips_an_exif_thumbnail_and_stops_before_a_second_image():
    main = hostile.jpeg_with_exif_thumbnail()[1]
    thumbnail_eoi = main.find(b"\xff\xd9")
    assert 0 < thumbnail_eoi < len(main) - 2  # the thumbnail's EOI comes first
    second = save(noise(8, 8, seed=5), "JPEG")  # as an MPO's extra view follows the first
    info = probe_image(main + second)
    assert info.image_end == len(main)
    assert info.notes == ()  # the EXIF with its thumbnail is valid


def test_jpeg_end_walks_every_scan_of_a_progressive_jpeg():
    data = save(noise(64, 48), "JPEG", progressive=True, quality=90)
    assert data.count(b"\xff\xda") > 2
    assert container.jpeg_end(data + b"\xff\xd9" * 10) == len(data)


def test_jpeg_end_ignores_stuffed_bytes_restart_markers_and_fill():
    scan = b"\xff\xda" + struct.pack(">H", 8) + bytes(6)
    entropy = b"\x12\xff\x00\x34\xff\xd0\x56\xff\xd7\xff\xff\xff\xd9"
    data = b"\xff\xd8" + scan + entropy + b"trailing \xff\xd9"
    assert container.jpeg_end(data) == len(b"\xff\xd8" + scan + entropy)


# --- what a bounded probe can still see ---------------------------------------------------


@pytest.mark.parametrize("case", ["truncated_jpeg", "truncated_png"])
def test_small_truncated_files_are_caught_by_the_probe(case):
    with pytest.raises(ImageDecodeError, match=TRUNCATED):
        probe_image(hostile.CASES[case]()[1])


@pytest.mark.parametrize("progressive", [False, True], ids=["baseline", "progressive"])
def test_big_truncated_jpeg_is_caught_by_the_probe(progressive):
    """ "Big" is anything over decode_pixels: lowering it exercises the same path cheaply."""
    data = save(noise(160, 120), "JPEG", quality=90, progressive=progressive)
    info = probe_image(data, decode_pixels=100)
    assert (info.width, info.height, info.image_end) == (160, 120, len(data))
    for cut in (len(data) // 2, len(data) - 2):
        with pytest.raises(ImageDecodeError, match=TRUNCATED):
            probe_image(data[:cut], decode_pixels=100)


def test_big_truncated_png_is_caught_by_verify():
    data = save(noise(160, 120), "PNG")
    assert probe_image(data, decode_pixels=100).image_end == len(data)
    for cut in (len(data) // 2, len(data) - 12):  # inside the pixel data; without IEND
        with pytest.raises(ImageDecodeError, match=TRUNCATED):
            probe_image(data[:cut], decode_pixels=100)


def _png_with_its_deflate_stream_cut(width: int, height: int) -> bytes:
    """Every chunk whole with the right CRC, and IEND there, but the compressed pixel data
    stops halfway: what a writer that re-chunks a truncated stream produces."""
    rows = b"".join(b"\x00" + bytes(range(256))[:width] for _ in range(height))
    deflated = zlib.compress(rows)
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + png_chunk(b"IHDR", header)
        + png_chunk(b"IDAT", deflated[: len(deflated) // 2])
        + png_chunk(b"IEND", b"")
    )


def test_big_png_with_valid_chunks_but_a_cut_deflate_stream_passes_the_probe_only():
    """A known limit, documented in probe_image: over decode_pixels a PNG is only verified
    (chunk CRCs, IEND), not inflated. The job's full decode refuses it; under decode_pixels
    the probe does too."""
    data = _png_with_its_deflate_stream_cut(160, 120)
    assert probe_image(data, decode_pixels=100).height == 120
    with pytest.raises(ImageDecodeError, match=TRUNCATED):
        probe_image(data)
    with pytest.raises(ImageDecodeError, match=TRUNCATED):
        decode_image(data)


@cache
def solid_png(side: int) -> bytes:
    """side×side of one colour, streamed through zlib: about 200 kB for 7000×7000."""
    rows = (bytes(3 * side) for _ in range(side))
    return hostile.png_from_rows(side, side, bit_depth=8, colour_type=2, level=9, rows=rows)


def test_7000x7000_png_probes_quickly():
    """Whether it was decoded shows in memory (below); here, that the probe takes no time."""
    data = solid_png(7000)
    assert len(data) < 300_000
    started = time.monotonic()
    info = probe_image(data)
    assert time.monotonic() - started < 0.5
    assert info == ImageInfo("PNG", 7000, 7000, 1, (), len(data))


_MEASURE = """
import sys
from bgremover.engine.preprocess import probe_image

def peak_mb():
    # VmHWM starts afresh at exec; ru_maxrss would carry over the parent's (pytest's) peak.
    for line in open("/proc/self/status"):
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) // 1024

path, warm_up = sys.argv[1], sys.argv[2]
probe_image(open(warm_up, "rb").read())  # loads the codec once
data = open(path, "rb").read()
before = peak_mb()
info = probe_image(data)
print(info.width, peak_mb() - before)
"""


def _peak_growth_mb(data: bytes, warm_up: bytes, tmp_path: Path) -> tuple[int, int]:
    """(width, how much a fresh process's peak memory grew while probing, in MB)."""
    path, warm_path = tmp_path / "image", tmp_path / "warm"
    path.write_bytes(data)
    warm_path.write_bytes(warm_up)
    result = subprocess.run(
        [sys.executable, "-c", _MEASURE, str(path), str(warm_path)],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=True,
    )
    width, growth = result.stdout.split()
    return int(width), int(growth)


@pytest.mark.parametrize("kind, side", [("png", 7000), ("jpeg", 5000), ("progressive_jpeg", 5000)])
def test_probe_memory_stays_small_whatever_the_size(kind, side, tmp_path):
    """Decoded in full each would take 75 MB or more (147 MB for the PNG; a progressive
    JPEG's coefficients alone 75 MB, even at 1/8 scale)."""
    if kind == "png":
        data, warm_up = solid_png(side), hostile.one_pixel()[1]
    else:
        progressive = kind == "progressive_jpeg"
        data = save(noise(50, 50).resize((side, side)), "JPEG", progressive=progressive)
        warm_up = save(noise(8, 8), "JPEG", progressive=progressive)
    width, growth = _peak_growth_mb(data, warm_up, tmp_path)
    assert width == side
    assert growth < 25, f"probing grew the process by {growth} MB"


# --- EXIF, read without Pillow's warnings --------------------------------------------------


def _jpeg_with_orientation(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    return save(noise(30, 20), "JPEG", exif=exif)


@pytest.mark.parametrize(
    "orientation, size", [(1, (30, 20)), (3, (30, 20)), (6, (20, 30)), (8, (20, 30))]
)
def test_probe_size_follows_the_orientation_as_decode_does(orientation, size):
    data = _jpeg_with_orientation(orientation)
    info = probe_image(data)
    decoded = decode_image(data)
    assert (info.width, info.height) == size
    assert decoded.rgb.shape[:2] == (size[1], size[0])
    assert info.notes == tuple(decoded.notes) == ()


@pytest.mark.parametrize("case", ["corrupt_exif", "absurd_orientation"])
def test_probe_gives_the_exif_notes_decode_gives(case):
    data = hostile.CASES[case]()[1]
    notes = probe_image(data).notes
    assert len(notes) == 1 and notes == tuple(decode_image(data).notes)


def test_png_exif_after_the_pixels_is_read_without_decoding_them():
    """Pillow's getexif() would decode the whole PNG to reach an eXIf chunk after IDAT."""
    exif = Image.Exif()
    exif[0x0112] = 6
    ihdr, exif_chunk, *rest = png_chunks(save(noise(30, 20), "PNG", exif=exif))
    assert exif_chunk[4:8] == b"eXIf" and rest[-1][4:8] == b"IEND"
    moved = b"\x89PNG\r\n\x1a\n" + ihdr + b"".join(rest[:-1]) + exif_chunk + rest[-1]
    info = probe_image(moved, decode_pixels=1)
    assert (info.width, info.height) == (20, 30)
    assert decode_image(moved).rgb.shape == (30, 20, 3)


def test_exif_reader_matches_what_pillow_reads():
    exif = Image.Exif()
    exif[0x0112] = 8
    assert container.exif_orientation(b"Exif\x00\x00" + exif.tobytes()) == (False, 8)
    assert container.exif_orientation(b"") == (False, None)
    # An IFD that claims more entries than the block holds, as Pillow warns about.
    damaged = b"II*\x00" + struct.pack("<IH", 8, 500) + bytes(30)
    assert container.exif_orientation(damaged).damaged
    # Tag data pointing past the end of the block.
    entry = struct.pack("<HHII", 0x010F, 2, 64, 4096)
    assert container.exif_orientation(
        b"II*\x00" + struct.pack("<IH", 8, 1) + entry + bytes(4)
    ).damaged


# --- concurrency --------------------------------------------------------------------------


EXPECTED_NOTES = {
    "corrupt_exif": ["the photo's EXIF metadata is damaged and was ignored"],
    "absurd_orientation": [
        f"the EXIF orientation value {hostile.ABSURD_ORIENTATION} is not valid and was ignored"
    ],
    "clean": [],
}


@pytest.fixture
def frequent_thread_switches():
    """Switch threads every microsecond, so decodes interleave as under real load."""
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)
    yield
    sys.setswitchinterval(interval)


@pytest.mark.usefixtures("frequent_thread_switches")
def test_concurrent_decodes_in_threads_each_get_their_own_notes():
    """Warnings caught per decode (catch_warnings) swap process-wide state: with decodes
    overlapping, one thread's EXIF warning lands in another's record or escapes. (The decoder
    that did so got about one note in ten wrong here.)"""
    files = {case: hostile.CASES[case]()[1] for case in EXPECTED_NOTES if case != "clean"}
    files["clean"] = save(noise(400, 300), "JPEG")  # a few ms to decode: decodes overlap
    cases = sorted(files)
    threads, rounds = 8, 30
    start = threading.Barrier(threads)

    def work(worker: int) -> list[tuple[str, list[str]]]:
        start.wait()
        results = []
        for step in range(rounds):
            case = cases[(worker + step) % len(cases)]
            decode = decode_image if (worker + step) % 2 else probe_image
            results.append((case, list(decode(files[case]).notes)))
        return results

    with ThreadPoolExecutor(threads) as pool:
        outcomes = [result for results in pool.map(work, range(threads)) for result in results]
    wrong = [(case, notes) for case, notes in outcomes if notes != EXPECTED_NOTES[case]]
    assert wrong == []
    assert len(outcomes) == threads * rounds
    assert Image.MAX_IMAGE_PIXELS == PILLOW_MAX_IMAGE_PIXELS


def test_a_process_with_warnings_as_errors_still_decodes_hostile_files_silently():
    """The decoder's own filters (installed at import) win over -W error, and nothing prints."""
    script = (
        "from bgremover.engine.preprocess import decode_image, probe_image\n"
        "from tests.fixtures import hostile\n"
        "data = hostile.corrupt_exif()[1]\n"
        "print(decode_image(data).notes == list(probe_image(data).notes) == "
        "['the photo\\'s EXIF metadata is damaged and was ignored'])\n"
    )
    result = subprocess.run(
        [sys.executable, "-W", "error", "-c", script],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=120,
        check=False,
    )
    assert (result.returncode, result.stdout, result.stderr) == (0, "True\n", "")


# --- the structure walks themselves --------------------------------------------------------

END_FINDERS = [
    container.png_end,
    container.jpeg_end,
    container.gif_end,
    container.riff_end,
    container.isobmff_end,
    container.bmp_end,
]
OTHER_WALKS = [
    lambda data: container.tiff_page_count(data, 1000),
    container.exif_orientation,
    container.tiff_orientation,
    lambda data: container.png_chunk(data, b"eXIf"),
]
_PREFIXES = [
    b"",
    b"\x89PNG\r\n\x1a\n",
    b"\xff\xd8",
    b"\xff\xd8\xff\xda\x00\x02",
    b"GIF89a",
    b"RIFF",
    b"\x00\x00\x00\x10ftypheic",
    b"BM",
    b"II*\x00",
    b"MM\x00*",
    b"II+\x00",
]


@settings(max_examples=300, deadline=None)
@given(prefix=st.sampled_from(_PREFIXES), tail=st.binary(max_size=300))
def test_structure_walks_never_raise_on_garbage(prefix, tail):
    data = prefix + tail
    for find_end in END_FINDERS:
        end = find_end(data)
        assert end is None or 0 <= end <= len(data)
    for walk in OTHER_WALKS:
        walk(data)


_SOS = b"\xff\xd8\xff\xda\x00\x02"
_PATHOLOGICAL = {
    "jpeg: stuffed bytes, no EOI": _SOS + b"\xff\x00" * 1_000_000,
    "jpeg: fill bytes": b"\xff\xd8" + b"\xff" * 2_000_000,
    "jpeg: restart markers": _SOS + b"\xff\xd0" * 1_000_000,
    "png: empty chunks": b"\x89PNG\r\n\x1a\n" + png_chunk(b"tEXt", b"") * 170_000,
    "gif: one-byte sub-blocks": b"GIF89a\x01\x00\x01\x00\x00\x00\x00!\xfe" + b"\x01x" * 1_000_000,
    "heif: empty boxes": struct.pack(">I", 8)
    + b"ftyp"
    + (struct.pack(">I", 8) + b"free") * 250_000,
    "tiff: IFD loop": b"II*\x00" + struct.pack("<IHI", 8, 0, 8),
}


@pytest.mark.parametrize("name", sorted(_PATHOLOGICAL))
def test_structure_walks_take_linear_time_on_2_mb_of_pathology(name):
    """A quadratic walk would take hours on these; a linear one well under a second each."""
    data = _PATHOLOGICAL[name]
    started = time.monotonic()
    for walk in END_FINDERS + OTHER_WALKS:
        walk(data)
    assert time.monotonic() - started < 5, name
