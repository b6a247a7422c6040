"""``python -m bench.loadtest``: many users, real photos, a websocket per job, real servers.

    python -m bench.loadtest [--topology embedded|scaleout|both] [--users 20] [--photos 200]
                             [--kill-worker] [--deadline 1200] [--out DIR]

N simulated users (a cookie jar each) upload P real photos in all (``$BGREMOVER_SHARED/eval/
sod/images``: ECSSD and the DIS5K samples, cycled when P is larger), each user its share one
after another without waiting for the results, as the upload page does with a multi-file
drop. Each user GETs / first (CSRF cookie) and POSTs /upload/ with ``X-CSRFToken``; a 429 or
503 is waited out as its Retry-After says and tried again (counted). Every accepted job gets
a websocket (``/ws/jobs/<id>/``, with the server's own Origin and the uploader's cookies),
whose state messages are all recorded with their arrival times; a socket that closes before
the job ends is replaced by polling the status URL once a second, as the browser does. Each
finished job's result is downloaded (``urls.cutout``) and must be a PNG.

Topologies, each on its own servers on loopback ports (torn down at the end):

- ``embedded``: one Daphne with the in-process worker and SQLite (the default deployment).
- ``scaleout``: PostgreSQL and Redis (``tests/services.py``), ``migrate``, two Daphne web
  processes with ``INPROCESS_WORKERS=0`` and two ``manage.py db_worker`` processes. A user
  uploads to one web process and watches on the other, so every progress message it gets
  crossed processes through Redis. ``--kill-worker`` SIGKILLs one db_worker and its engine
  child once ``--kill-at`` (40 %) of the jobs are finished, while it is running a job, and
  starts nothing in its place: the other must take the job over after the heartbeat timeout.

Every topology has ``--deadline`` seconds from its start (servers included); whatever has
not finished by then is counted lost and everything stops. Results go to
``<out>/loadtest-<timestamp>.json`` and ``.txt``, server logs to ``loadtest-<timestamp>-logs/``.
The building blocks (HTTP client, server start and stop, /proc sampling) are
``bench.loopback``'s.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from bench.loadtest import log
from bench.loadtest.figures import summarize
from bench.loadtest.load import LoadRun, load_photos
from bench.loadtest.records import record_json
from bench.loadtest.report import render_report
from bench.loadtest.topologies import embedded, roles_of, scaleout
from bench.loopback.memory import RoleSampler
from bench.loopback.runs import (
    HARNESS_ROOT,
    add_run_options,
    parse_server_env,
    start_run,
    write_results,
)
from bench.loopback.servers import ServerConfig, prepare

TOPOLOGIES = ("embedded", "scaleout")


def run_topology(name: str, config: ServerConfig, args: argparse.Namespace) -> dict[str, Any]:
    """Start the topology, run the load against it, stop it; one results record. Errors are
    recorded, not raised, so the other topology still runs."""
    began = time.monotonic()
    deadline = began + args.deadline
    record: dict[str, Any] = {"topology": name, "loadavg_start": os.getloadavg()}
    photos = load_photos(args.photos)
    try:
        with (embedded if name == "embedded" else scaleout)(config, args) as topology:
            record["server_env_overrides"] = topology.env
            roles = {p.role: p.process.pid for p in [*topology.webs, *topology.workers]}
            sampler = RoleSampler(roles)
            record["idle_rss_bytes"] = sampler.sample()
            sampler.start()
            record["servers_ready_s"] = round(time.monotonic() - began, 1)
            load = LoadRun(topology, args, deadline)
            log(
                f"{name}: {len(roles)} server process(es) up; {args.users} users, "
                f"{args.photos} photos, {load.left():.0f} s left"
            )
            try:
                record["in_time"] = asyncio.run(load.run(photos))
            finally:
                sampler.stop()
                record["alive_at_end"] = {
                    p.role: p.process.poll() is None for p in roles_of(topology)
                }
                record["memory"] = sampler.peaks()
                record["summary"] = summarize(load.records)
                record["kill"] = load.kill_outcome() if args.kill_worker else None
                record["jobs"] = [record_json(r, load.t0) for r in load.records]
                record["loadavg_end"] = os.getloadavg()
    except Exception as exc:  # one topology's failure must not cost the other's figures
        record["error"] = f"{type(exc).__name__}: {exc}"[:3000]
        log(f"{name}: {record['error']}")
    record.setdefault("loadavg_end", os.getloadavg())
    record["elapsed_s"] = round(time.monotonic() - began, 1)
    return record


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.loadtest",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--topology", choices=[*TOPOLOGIES, "both"], default="both")
    parser.add_argument("--users", type=int, default=20)
    parser.add_argument("--photos", type=int, default=200)
    parser.add_argument(
        "--kill-worker", action="store_true", help="scaleout: SIGKILL one db_worker mid-run"
    )
    parser.add_argument(
        "--kill-at",
        type=float,
        default=0.4,
        help="fraction of the photos finished before the kill (default 0.4)",
    )
    parser.add_argument(
        "--heartbeat-timeout",
        type=int,
        default=20,
        help="JOB_HEARTBEAT_TIMEOUT_S of the scaleout servers (default 20)",
    )
    parser.add_argument(
        "--deadline",
        type=float,
        default=1200,
        help="seconds each topology may take, servers included (default 1200)",
    )
    parser.add_argument(
        "--latency-polls",
        type=int,
        default=4,
        help="running jobs polled at once beside their socket to time it, when the messages "
        "carry no timestamp (default 4; 0: none)",
    )
    add_run_options(parser)
    args = parser.parse_args(argv)
    if args.users < 1 or args.photos < 1:
        parser.error("--users and --photos must be at least 1")
    if not 0 < args.kill_at < 1:
        parser.error("--kill-at is a fraction between 0 and 1")
    parse_server_env(parser, args)
    args.topologies = list(TOPOLOGIES) if args.topology == "both" else [args.topology]
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    try:
        importlib.import_module("websockets.asyncio.client")
    except ImportError:
        raise SystemExit(
            "bench.loadtest needs the websockets package: pip install websockets"
        ) from None
    repo = HARNESS_ROOT
    results, stamp, log_dir = start_run(args.out, "loadtest", repo)
    models = Path(results["model_dir"])
    results |= {
        "options": {
            k: v for k, v in vars(args).items() if k not in ("out", "topologies", "server_env")
        },
        "server_env": args.server_env,
        "topologies": [],
    }
    with tempfile.TemporaryDirectory(prefix="loadtest-static-") as static:
        # The memory cap of bench.stress's servers does not apply here: RoleSampler only reads.
        config = ServerConfig(repo, sys.executable, models, Path(static), log_dir, 0, {})
        log(f"preparing {repo} ({results['commit']}): collectstatic")
        prepare(config)
        for name in args.topologies:
            log(f"{name}: starting")
            results["topologies"].append(run_topology(name, config, args))
    write_results(args.out / f"loadtest-{stamp}", results, render_report(results), log_dir)
    return 0
