"""What replaying edits adds to a download's peak memory, measured in a fresh process.

A download of an edited image replays its edits on the full-resolution cut-out inside a
heavy-operation slot of the web process (editor.results.load_cutout), so the README's memory
bound counts it: a fixed part (the matting solve at its bounded working size) and a part per
pixel (the marks' region at full resolution, the new planes). Measured as the process's VmHWM
around apply_edits alone, with two smart marks and a brush stroke.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.engine.peak_memory import linux_only, measured

BAG = "dis5k_1-Accessories-1-Bag-2339506821_83cf9f1d22_o"  # 1944×2592, scaled up here

pytestmark = linux_only

MEASURE = """
import gc, sys
import numpy as np
from PIL import Image
from bgremover.engine.edits import Stroke, apply_edits

photo_path, mask_path, width, height = sys.argv[1], sys.argv[2], int(sys.argv[3]), int(sys.argv[4])
photo = np.asarray(Image.open(photo_path).convert("RGB").resize((width, height)))
alpha = np.asarray(Image.open(mask_path).convert("L").resize((width, height)))
s = width / 1944
edits = (
    Stroke("remove", 30 * s, ((970 * s, 1300 * s), (1000 * s, 1500 * s))),
    Stroke("keep", 30 * s, ((150 * s, 150 * s),)),
    Stroke("erase", 20 * s, ((1500 * s, 2300 * s), (1600 * s, 2300 * s))),
)
small = (slice(None, None, 8), slice(None, None, 8))
apply_edits(photo[small].copy(), photo[small].copy(), alpha[small].copy(), edits, 1 / 8)
gc.collect()
before = peak_kib()
edited = apply_edits(photo, photo, alpha, edits)
assert edited.alpha[round(1300 * s), round(970 * s)] == 0
print((peak_kib() - before) * 1024)
"""


def _added_bytes(eval_dir: Path, width: int, height: int) -> float:
    photo = eval_dir / "sod" / "images" / f"{BAG}.jpg"
    mask = eval_dir / "sod" / "masks" / f"{BAG}.png"
    return measured(MEASURE, str(photo), str(mask), str(width), str(height))


# README, "Memory": an edited download adds at most about 0.3 GB + 12 bytes a pixel.
FIXED_BYTES = 0.3 * 1024**3
PER_PIXEL = 12


@pytest.mark.parametrize("size", [(3000, 4000), (6000, 8000)])
def test_replaying_edits_adds_a_bounded_fixed_part_and_little_per_pixel(
    eval_dir: Path, size: tuple[int, int]
) -> None:
    added = _added_bytes(eval_dir, *size)
    pixels = size[0] * size[1]
    assert added <= FIXED_BYTES + PER_PIXEL * pixels, (
        f"replaying edits on {pixels / 1e6:.0f} MP added {added / 1024**3:.2f} GB"
    )
