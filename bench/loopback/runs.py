"""A harness run's frame: its log lines, where the shared data and weights are, the facts of
the machine and checkout, the options every harness takes, the start of the run (timestamp,
log folder, SIGTERM clean-up) and the writing of its results."""

from __future__ import annotations

import argparse
import datetime
import json
import os
import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from bench.loopback.memory import GB

HARNESS_ROOT = Path(__file__).resolve().parents[2]


def logger(harness: str) -> Callable[[str], None]:
    """A ``log(message)`` that writes ``[harness] message`` to standard error."""

    def log(message: str) -> None:
        print(f"[{harness}] {message}", file=sys.stderr, flush=True)

    return log


def shared_root() -> Path:
    return Path(os.getenv("BGREMOVER_SHARED") or HARNESS_ROOT.parent / "shared")


def sod_photos() -> list[Path]:
    """The SOD evaluation photos of the shared data, sorted by name."""
    return sorted((shared_root() / "eval" / "sod" / "images").glob("*.jpg"))


def model_dir() -> Path:
    """The weights the servers load: ``$BGREMOVER_MODEL_DIR`` or the shared models; exits
    when it holds none."""
    folder = Path(os.getenv("BGREMOVER_MODEL_DIR") or shared_root() / "models")
    if not any(folder.glob("*.pth")):
        raise SystemExit(f"no weights (*.pth) in {folder}: set BGREMOVER_SHARED")
    return folder


def git_commit(repo: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def memory_total_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 8 * GB


def run_facts(repo: Path, models: Path) -> dict[str, Any]:
    """What a results file says first: when, which checkout at which commit, on what."""
    return {
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "repo": str(repo),
        "commit": git_commit(repo),
        "cpus": os.cpu_count(),
        "memory_total_bytes": memory_total_bytes(),
        "model_dir": str(models),
    }


def heading(harness: str, results: dict[str, Any]) -> tuple[str, str]:
    """A report's title line and the start of its machine line, from ``run_facts``."""
    return (
        f"bench.{harness} {results['started']}  repo {results['repo']} @ {results['commit']}",
        f"{results['cpus']} CPUs, {results['memory_total_bytes'] / GB:.1f} GB RAM",
    )


def add_run_options(parser: argparse.ArgumentParser) -> None:
    """``--out`` and ``--server-env``, which every harness takes."""
    parser.add_argument(
        "--out",
        type=Path,
        default=HARNESS_ROOT / "bench" / "results",
        help="where the results and server logs go (default bench/results)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every server process (repeatable)",
    )


def parse_server_env(parser: argparse.ArgumentParser, args: argparse.Namespace) -> None:
    """``args.server_env`` from a list of NAME=VALUE to a dict (a parser error otherwise)."""
    try:
        args.server_env = dict(item.split("=", 1) for item in args.server_env)
    except ValueError:
        parser.error("--server-env takes NAME=VALUE")


def open_run(out: Path, prefix: str) -> tuple[str, Path]:
    """A run's timestamp and its server-log folder under ``out``. From here on a SIGTERM (make
    interrupted, a CI timeout) still runs the finally blocks that stop the servers."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    log_dir = out / f"{prefix}-{stamp}-logs"
    log_dir.mkdir()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return stamp, log_dir


def start_run(out: Path, harness: str, repo: Path) -> tuple[dict[str, Any], str, Path]:
    """The run's facts (``run_facts``; exits without weights), its timestamp and its server-log
    folder (``open_run``)."""
    results = run_facts(repo, model_dir())
    stamp, log_dir = open_run(out, harness)
    return results, stamp, log_dir


def write_results(base: Path, results: dict[str, Any], text: str, log_dir: Path) -> None:
    """``base``.json and ``base``.txt, and the table on standard output."""
    Path(f"{base}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    Path(f"{base}.txt").write_text(text)
    print(text)
    print(f"results: {base}.json, {base}.txt; server logs: {log_dir}")
