"""decode_image's peak memory, measured in a fresh process per decode.

Pillow holds a decoded image at 4 bytes a pixel (RGB too); the arrays decode_image returns take
3 (RGB) or 4 (RGB + alpha). A lean decode peaks near the sum of the two: 7 or 8 bytes a pixel.
Each extra full copy (a whole-image convert(), tobytes(), .copy(), a turned Pillow image, the
file read twice) adds 3 to 4 more; the old decoder peaked at 14 to 18. The web server renders
downloads from several such decodes at once, so the bounds here leave a margin over the lean
figures but none for another copy.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from tests.engine.peak_memory import linux_only, measured

SIZE = (4000, 3000)  # 12 megapixels

pytestmark = linux_only

# Imports and a small decode of the same format come first, so that libraries, codecs and the
# allocator's first arenas are in the baseline; the file's bytes too, for a bytes source.
MEASURE = """
import gc, io, sys
from PIL import Image
from bgremover.engine.preprocess import decode_image

path, kind = sys.argv[1:3]
with Image.open(path) as image:
    warm_up = io.BytesIO()
    Image.new(image.mode, (64, 64)).save(warm_up, image.format)
decode_image(warm_up.getvalue())
source = open(path, "rb").read() if kind == "bytes" else path
gc.collect()
before = peak_kib()
decoded = decode_image(source)
after = peak_kib()
height, width = decoded.rgb.shape[:2]
print((after - before) * 1024 / (height * width))
"""


def _photo() -> Image.Image:
    """A smooth 12 MP picture (compresses like a photo, builds in a fraction of a second)."""
    ramp = Image.linear_gradient("L")
    small = Image.merge("RGB", (ramp, ramp.rotate(90), ramp.rotate(45)))
    return small.resize(SIZE, Image.Resampling.BILINEAR)


@pytest.fixture(scope="module")
def files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    folder = tmp_path_factory.mktemp("decode-memory")
    photo = _photo()
    paths = {name: folder / name for name in ("photo.jpg", "turned.jpg", "rgba.png", "noise.png")}
    photo.save(paths["photo.jpg"], quality=90)
    exif = Image.Exif()
    exif[0x0112] = 6  # a phone held upright: turned by 90° on decode
    photo.save(paths["turned.jpg"], quality=90, exif=exif.tobytes())
    with_alpha = photo.copy()
    with_alpha.putalpha(Image.linear_gradient("L").resize(SIZE))
    with_alpha.save(paths["rgba.png"], compress_level=1)
    # Incompressible: the file is as large as the pixels, so a copy of it would show.
    noise = np.random.default_rng(0).integers(0, 256, (SIZE[1], SIZE[0], 3), dtype=np.uint8)
    Image.fromarray(noise).save(paths["noise.png"], compress_level=0)
    return paths


def _peak_bytes_per_pixel(path: Path, kind: str) -> float:
    return measured(MEASURE, str(path), kind, timeout_s=120)


@pytest.mark.parametrize(
    "name, kind, bound",
    [
        ("photo.jpg", "path", 9.0),  # lean: 7.3 (Pillow's 4 + our RGB 3)
        ("turned.jpg", "path", 9.0),  # lean: 7.3; the turn needs only our 3 + the turned 3
        ("rgba.png", "path", 10.0),  # lean: 8.3 (Pillow's 4 + our RGB 3 and alpha 1)
        ("noise.png", "bytes", 9.0),  # lean: 7.3 beside the caller's bytes, never a copy
    ],
)
def test_decode_peak_memory_stays_near_pillows_copy_plus_ours(files, name, kind, bound):
    peak = _peak_bytes_per_pixel(files[name], kind)
    assert peak <= bound, f"decoding {name} from {kind} peaked at {peak:.1f} bytes a pixel"
