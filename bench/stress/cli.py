"""``python -m bench.stress``: hostile-load figures from a real Daphne server on loopback.

    python -m bench.stress [--only tiff,bombs,burst,throughput,soak] [--out DIR] [--repo PATH]

Each scenario gets a fresh server (its own DATA_DIR, database and port) started from
``--repo`` (default: this checkout) with this Python, so another checkout (an older commit in
a worktree) can be measured with the same venv. The harness speaks HTTP only and imports
nothing of the server's code (only ``bench.stress`` and ``bench.loopback``): the two can be
copied elsewhere and pointed at any checkout.

The memory figures are the sum of the RSS of the Daphne process and all its descendants,
sampled every 50 ms. Results go to ``<out>/stress-<timestamp>.json`` and ``.txt`` and the
servers' logs to ``<out>/stress-<timestamp>-logs/``. ``make stress STRESS_ARGS=...`` runs it.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict
from pathlib import Path
from typing import Any

from bench.loopback.memory import GB
from bench.loopback.runs import (
    HARNESS_ROOT,
    add_run_options,
    parse_server_env,
    start_run,
    write_results,
)
from bench.loopback.servers import ServerConfig, limits_off_env, prepare, settings_names
from bench.stress import log
from bench.stress.bombs import scenario_bombs
from bench.stress.burst import scenario_burst
from bench.stress.report import Check, mark, render_report
from bench.stress.server import Server, running_server
from bench.stress.soak import scenario_soak
from bench.stress.throughput import scenario_throughput
from bench.stress.tiff import scenario_tiff

SCENARIOS = ("tiff", "bombs", "burst", "throughput", "soak")


RUNNERS: dict[str, Callable[[Server, argparse.Namespace], tuple[dict[str, Any], list[Check]]]] = {
    "tiff": scenario_tiff,
    "bombs": scenario_bombs,
    "burst": scenario_burst,
    "throughput": scenario_throughput,
    "soak": scenario_soak,
}


def run_scenario(
    config: ServerConfig, name: str, args: argparse.Namespace
) -> tuple[dict[str, Any], list[Check]]:
    overrides = limits_off_env(config.repo) if name == "soak" else {}
    load_start = os.getloadavg()
    began = time.monotonic()
    record: dict[str, Any] = {"server_env_overrides": overrides}
    checks: list[Check] = []
    try:
        with running_server(config, name, overrides) as server:
            record["baseline_rss_bytes"] = server.baseline_rss_bytes
            try:
                result, checks = RUNNERS[name](server, args)
                record.update(result)
            finally:
                record["peak_rss_bytes"] = server.sampler.peak_bytes
                record["peak_processes"] = server.sampler.peak_processes
                record["rss_samples"] = server.sampler.samples
                record["memory_cap_hit"] = server.sampler.limit_hit
                record["server_alive_at_end"] = server.process.poll() is None
    except Exception as exc:  # one broken scenario must not cost the others' figures
        record["error"] = f"{type(exc).__name__}: {exc}"[:3000]
        checks.append(
            Check(name, "scenario ran", record["error"].splitlines()[0][:80], "ran", False)
        )
    record["elapsed_s"] = round(time.monotonic() - began, 1)
    record["loadavg_start"] = load_start
    record["loadavg_end"] = os.getloadavg()
    return record, checks


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stress",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", help=f"comma-separated scenarios (of {', '.join(SCENARIOS)})")
    parser.add_argument(
        "--repo",
        type=Path,
        default=HARNESS_ROOT,
        help="the checkout whose server is measured (default: this one)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the Python that runs manage.py and Daphne (default: this one)",
    )
    parser.add_argument("--soak-jobs", type=int, default=300)
    parser.add_argument(
        "--soak-timeout", type=float, default=1800, help="seconds the soak may take in all"
    )
    parser.add_argument(
        "--tiff-timeout",
        type=float,
        default=120,
        help="seconds to wait for the answer to the TIFF upload",
    )
    parser.add_argument(
        "--upload-timeout",
        type=float,
        default=300,
        help="seconds to wait for any other upload's answer",
    )
    parser.add_argument(
        "--job-timeout",
        type=float,
        default=600,
        help="seconds to wait for a scenario's accepted jobs to finish",
    )
    parser.add_argument(
        "--memory-cap-gb",
        type=float,
        help="stop a server whose tree passes this RSS, to protect the machine "
        "(default: 60%% of RAM, at most 16)",
    )
    add_run_options(parser)
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in (args.only or ",".join(SCENARIOS)).split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown or not chosen:
        parser.error(f"--only takes names from {', '.join(SCENARIOS)}; got {args.only!r}")
    args.only = [s for s in SCENARIOS if s in chosen]
    if args.soak_jobs < 1:
        parser.error("--soak-jobs must be at least 1")
    parse_server_env(parser, args)
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    repo = args.repo.resolve()
    if not (repo / "manage.py").is_file():
        raise SystemExit(f"--repo {repo}: no manage.py there")
    results, stamp, log_dir = start_run(args.out, "stress", repo)
    models = Path(results["model_dir"])
    total = results["memory_total_bytes"]
    cap = int(args.memory_cap_gb * GB) if args.memory_cap_gb else min(16 * GB, int(total * 0.6))
    with tempfile.TemporaryDirectory(prefix="stress-static-") as static:
        config = ServerConfig(
            repo, args.python, models, Path(static), log_dir, cap, args.server_env
        )
        results |= {
            "python": args.python,
            "memory_cap_bytes": cap,
            "settings_env_names": settings_names(repo),
            "server_env": args.server_env,
            "options": {k: v for k, v in vars(args).items() if k not in ("out", "repo")},
            "scenarios": {},
        }
        log(f"preparing {repo} ({results['commit']}): collectstatic")
        results.update(prepare(config))
        checks: list[Check] = []
        for name in args.only:
            log(f"{name}: starting a fresh server")
            record, scenario_checks = run_scenario(config, name, args)
            results["scenarios"][name] = record
            checks += scenario_checks
            for check in scenario_checks:
                log(f"{name}: {check.measure}: {check.value} [{mark(check.ok)}]")
    results["checks"] = [asdict(check) for check in checks]
    write_results(args.out / f"stress-{stamp}", results, render_report(results, checks), log_dir)
    return 0
