"""Scenario ``soak``: hundreds of tiny jobs through one client, rate limits off; the server
tree's RSS growth over them (a leak grows with every job)."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from typing import Any

from bench.loopback.client import Client
from bench.loopback.memory import MB, tree_rss_bytes
from bench.stress import log
from bench.stress.files import small_jpeg
from bench.stress.jobs import Tracked, track, wait_for_jobs
from bench.stress.report import Check
from bench.stress.server import Server

SOAK_SAMPLE_EVERY = 50
SOAK_BATCH = 10
# RSS moves by a few percent with the allocator's whims; a leak grows with every job.
SOAK_GROWTH_TARGET = 0.05


def scenario_soak(server: Server, args: argparse.Namespace) -> tuple[dict[str, Any], list[Check]]:
    images = [small_jpeg(64, variant) for variant in range(4)]
    client = Client(server.url, args.upload_timeout)
    client.open_page()
    deadline = time.monotonic() + args.soak_timeout
    series: list[dict[str, Any]] = []
    states: Counter[str] = Counter()
    submitted = finished = refusals = 0
    rejected: Counter[str] = Counter()
    while finished < args.soak_jobs and time.monotonic() < deadline:
        batch: list[Tracked] = []
        wait = 0.0
        while len(batch) < SOAK_BATCH and submitted < args.soak_jobs:
            answer = client.upload(f"soak-{submitted}.jpg", images[submitted % len(images)])
            if answer.status in (429, 503):
                refusals += 1
                wait = answer.retry_wait_s()
                break
            submitted += 1
            job = track(client, answer)
            if job is None:  # refused for another reason: counted as a finished failure
                rejected[str(answer.status)] += 1
                finished += 1
            else:
                batch.append(job)
        if not batch and wait:
            time.sleep(wait)  # nothing of ours is running: the limit is the server's to lift
        for job in batch:
            wait_for_jobs([job], deadline, interval_s=0.2)
            if job.final is None:
                break
            states[str(job.final.get("status"))] += 1
            finished += 1
            if finished % SOAK_SAMPLE_EVERY == 0 or finished == args.soak_jobs:
                rss = tree_rss_bytes(server.process.pid)
                series.append({"jobs": finished, "rss_bytes": rss})
                log(f"soak: {finished} jobs, server tree {rss / MB:.0f} MB")
        if any(job.final is None for job in batch):
            break  # the deadline passed with a job still running
        if sum(rejected.values()) > 10:
            break  # the server refuses tiny JPEGs outright: no soak to measure
    first = next((s for s in series if s["jobs"] >= SOAK_SAMPLE_EVERY), None)
    last = series[-1] if series else None
    growth = (last["rss_bytes"] - first["rss_bytes"]) if first and last else None
    result = {
        "jobs_requested": args.soak_jobs,
        "jobs_finished": finished,
        "states": dict(states),
        "rejected_uploads": dict(rejected),
        "refusals_waited_out": refusals,
        "series": series,
        "baseline_rss_bytes": server.baseline_rss_bytes,
        "growth_bytes": growth,
        "second_half_growth_bytes": None,
    }
    ok = None
    value = "too few jobs for two samples"
    if first and last and last is not first:
        ratio = growth / first["rss_bytes"]
        ok = ratio <= SOAK_GROWTH_TARGET
        value = (
            f"{growth / MB:+.0f} MB ({ratio:+.1%}) from job {first['jobs']} "
            f"({first['rss_bytes'] / MB:.0f} MB) to job {last['jobs']}"
        )
    checks = [
        Check(
            "soak",
            f"RSS growth over {args.soak_jobs} tiny jobs",
            value,
            f"≤ {SOAK_GROWTH_TARGET:.0%}",
            ok,
        ),
    ]
    # Caches that fill once (the model, the allocator's arenas) raise the early samples; a
    # leak keeps growing in the second half too, so that figure is shown beside the target's.
    middle = next((s for s in series if s["jobs"] >= finished / 2), None)
    if middle and last and middle is not last:
        half = last["rss_bytes"] - middle["rss_bytes"]
        result["second_half_growth_bytes"] = half
        checks.append(
            Check(
                "soak",
                "RSS growth over the second half",
                f"{half / MB:+.0f} MB from job {middle['jobs']} to job {last['jobs']}",
                "—",
                None,
            )
        )
    checks += [
        Check(
            "soak",
            "jobs done",
            ", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "none",
            f"{args.soak_jobs} done",
            states.get("done", 0) == args.soak_jobs,
        ),
    ]
    return result, checks
