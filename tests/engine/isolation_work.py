"""Work for tests/engine/test_isolation.py: module-level functions a spawned child can import
by name (the child imports this light module, not the test module)."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

from bgremover.engine.errors import ImageDecodeError

Progress = Callable[[str, float], None]


def add(a: int, b: int, *, progress: Progress) -> tuple[int, int]:
    progress("segmenting", 0.25)
    progress("matting", 0.75)
    return a + b, os.getpid()


def refuse(*, progress: Progress) -> None:
    raise ImageDecodeError("The image file is truncated or corrupt")


def sleep_forever(*, progress: Progress) -> None:
    progress("decoding", 0.0)
    time.sleep(600)


def hog_memory(megabytes: int, *, progress: Progress) -> None:
    block = bytearray(megabytes * 1024 * 1024)
    for index in range(0, len(block), 4096):  # touch every page: resident, not just reserved
        block[index] = 1
    time.sleep(600)


def report_then_sleep(*, progress: Progress) -> None:
    progress("segmenting", 0.5)
    time.sleep(600)


def pid(*, progress: Progress) -> int:
    return os.getpid()
