"""Speed and memory: test photos at fixed megapixel counts, whole-process CLI runs, warm runs."""

from __future__ import annotations

import json
import math
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from PIL import Image

JPEG_QUALITY = 95


def upscale_to_megapixels(source: Path, megapixels: float, dst: Path) -> tuple[int, int]:
    """Resample ``source`` (Lanczos, aspect kept) to ``megapixels`` million pixels; JPEG q95.

    Returns the (width, height) written.
    """
    with Image.open(source) as image:
        rgb = image.convert("RGB")
    scale = math.sqrt(megapixels * 1e6 / (rgb.width * rgb.height))
    size = (max(1, round(rgb.width * scale)), max(1, round(rgb.height * scale)))
    dst.parent.mkdir(parents=True, exist_ok=True)
    rgb.resize(size, Image.Resampling.LANCZOS).save(dst, "JPEG", quality=JPEG_QUALITY)
    return size


@dataclass(frozen=True)
class ProcessRun:
    seconds: float
    peak_rss_bytes: int


# Started in a small helper: Linux carries a parent's RSS high-water mark into a forked child
# across exec, so a child of this (large) process would report at least our own peak. The
# helper is a bare interpreter of a few MB; it times the command and reads its own rusage
# record of it from os.wait4.
_MEASURE = """
import json, os, sys, time
started = time.perf_counter()
pid = os.posix_spawnp(sys.argv[2], sys.argv[2:], os.environ)
_, status, usage = os.wait4(pid, 0)
with open(sys.argv[1], "w") as result:
    json.dump({"seconds": time.perf_counter() - started, "maxrss_kb": usage.ru_maxrss,
               "exit": os.waitstatus_to_exitcode(status)}, result)
"""


def run_process(command: list[str], env: dict[str, str] | None = None) -> ProcessRun:
    """Run ``command`` to completion: wall seconds and the peak RSS of it and its children.

    The peak is the command's own (Linux's ru_maxrss of a waited child covers it and the
    descendants it waited for), not a maximum over earlier runs as getrusage(RUSAGE_CHILDREN)
    in a long-lived process would give.
    """
    with tempfile.NamedTemporaryFile(suffix=".json") as result_file:
        done = subprocess.run(
            [sys.executable, "-I", "-S", "-c", _MEASURE, result_file.name, *command],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            check=False,
        )
        measured = json.loads(Path(result_file.name).read_text() or "null")
    if done.returncode != 0 or measured is None or measured["exit"] != 0:
        tail = done.stdout.decode(errors="replace")[-2000:]
        code = measured["exit"] if measured else done.returncode
        raise RuntimeError(f"{' '.join(command)} exited with {code}:\n{tail}")
    return ProcessRun(measured["seconds"], measured["maxrss_kb"] * 1024)  # Linux: kilobytes


def summarise(runs: list[ProcessRun]) -> dict:
    return {
        "median_s": statistics.median(r.seconds for r in runs),
        "runs_s": [r.seconds for r in runs],
        "peak_rss_mib": max(r.peak_rss_bytes for r in runs) / 2**20,
    }


def compare_processes(
    ours: list[str],
    theirs: list[str] | None,
    repeats: int,
    their_repeats: int,
    ours_env: dict[str, str] | None = None,
    theirs_env: dict[str, str] | None = None,
) -> dict:
    """Alternate our and their command so machine noise hits both; medians and the ratio."""
    our_runs: list[ProcessRun] = []
    their_runs: list[ProcessRun] = []
    if theirs is None:
        their_repeats = 0
    for index in range(max(repeats, their_repeats)):
        if index < repeats:
            our_runs.append(run_process(ours, env=ours_env))
        if index < their_repeats:
            their_runs.append(run_process(theirs, env=theirs_env))
    result = {"ours": summarise(our_runs)}
    if their_runs:
        result["rembg"] = summarise(their_runs)
        result["ratio"] = result["ours"]["median_s"] / result["rembg"]["median_s"]
    return result


def time_calls(call: Callable[[], object], repeats: int, warmup: int = 1) -> dict:
    """Median wall seconds of ``call()`` after ``warmup`` untimed calls."""
    for _ in range(warmup):
        call()
    runs = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        runs.append(time.perf_counter() - started)
    # The fastest run shows the cost without interference from other work on the machine.
    return {"median_s": statistics.median(runs), "min_s": min(runs), "runs_s": runs}
