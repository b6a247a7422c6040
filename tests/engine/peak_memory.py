"""Peak memory of a piece of work, measured in a fresh process as its VmHWM (peak resident
set). resource's ru_maxrss would be the same in a process started from a shell, but Linux
carries the parent's peak into a child across fork and exec: under pytest the baseline would
already be pytest's own size."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

linux_only = pytest.mark.skipif(
    sys.platform != "linux", reason="reads the peak resident set from /proc"
)

# Prepended to every measuring script: peak_kib() is the process's peak so far.
PEAK_KIB = """
import re

def peak_kib():
    with open("/proc/self/status") as status:
        return int(re.search(r"VmHWM:\\s*(\\d+) kB", status.read())[1])
"""


def measured(script: str, *args: str, timeout_s: int = 300) -> float:
    """Run ``script`` (which prints one number) with ``args`` in a fresh Python process."""
    result = subprocess.run(
        [sys.executable, "-c", PEAK_KIB + script, *args],
        capture_output=True,
        text=True,
        cwd=REPO,
        timeout=timeout_s,
        check=True,
    )
    return float(result.stdout)
