"""Peak memory of reading a base64 picture from a JSON body, measured in a fresh process."""

from __future__ import annotations

from pathlib import Path

from tests.engine.peak_memory import linux_only, measured

pytestmark = linux_only

MEASURE = """
import os, sys
os.environ.update(DJANGO_SETTINGS_MODULE="bgremover.settings", ALLOW_DEV_SECRET_KEY="1")
os.environ["DATA_DIR"] = sys.argv[1]
import django
django.setup()
from api.images import decode_b64
text = " ".join(["QUJD"] * 6_500_000)  # 32 MB of short chunks, within the 25 MB upload's size
before = peak_kib()
decoded = decode_b64("image_file_b64", text)
assert decoded[:3] == b"ABC"
print((peak_kib() - before) / 1024 / (len(text) / 2**20))
"""


def test_base64_with_whitespace_costs_a_few_times_its_size(tmp_path: Path) -> None:
    # Split into chunks first, the same body took 13.7 times its size (25 with 2-byte chunks).
    assert measured(MEASURE, str(tmp_path)) < 4
