"""Scenario ``bombs``: ten 49 MP PNGs of a few hundred KB each, uploaded at the same moment;
the server tree's memory against its target, and every accepted job's end."""

from __future__ import annotations

import argparse
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.loopback.client import Answer, Client
from bench.loopback.memory import GB
from bench.stress.files import BOMB_SIDE, gradient_png
from bench.stress.jobs import job_outcomes, track, wait_for_jobs
from bench.stress.report import Check
from bench.stress.server import Server

BOMB_CLIENTS = 10
BOMB_MEMORY_TARGET = 4 * GB
BOMB_EXPECTED = {201, 429, 503}


def _spread(seconds: list[float]) -> str:
    return f"{min(seconds):.1f}–{max(seconds):.1f} s" if seconds else "—"


def scenario_bombs(server: Server, args: argparse.Namespace) -> tuple[dict[str, Any], list[Check]]:
    data = gradient_png()
    start = threading.Barrier(BOMB_CLIENTS)

    def one(index: int) -> tuple[Client, Answer]:
        client = Client(server.url, args.upload_timeout)
        client.open_page()
        start.wait(timeout=120)  # all ten bodies leave together
        return client, client.upload(f"bomb-{index}.png", data, args.upload_timeout)

    began = time.monotonic()
    with ThreadPoolExecutor(BOMB_CLIENTS) as pool:
        answers = list(pool.map(one, range(BOMB_CLIENTS)))
    uploads_s = time.monotonic() - began
    uploads_peak = server.sampler.take_window_peak()
    jobs = [job for client, answer in answers if (job := track(client, answer))]
    wait_for_jobs(jobs, time.monotonic() + args.job_timeout, interval_s=1.0)
    jobs_peak = server.sampler.take_window_peak()
    ended = [job.finished_at for job in jobs if job.finished_at is not None]
    statuses = [answer.status for _, answer in answers]
    outcomes = job_outcomes(jobs)
    result = {
        "file_bytes": len(data),
        "pixels": BOMB_SIDE * BOMB_SIDE,
        "uploads": [answer.summary() for _, answer in answers],
        "statuses": dict(Counter(str(s) for s in statuses)),
        "uploads_s": round(uploads_s, 2),
        "accepted": len(jobs),
        "jobs": outcomes,
        "all_jobs_ended_after_s": round(max(ended) - began, 1)
        if ended and len(ended) == len(jobs)
        else None,
        "memory_cap_hit": server.sampler.limit_hit,
        "peak_rss_during_uploads_bytes": uploads_peak,
        "peak_rss_during_jobs_bytes": jobs_peak,
    }
    unexpected = sorted({str(s) for s in statuses if s not in BOMB_EXPECTED})
    ended_ok = all(
        job.final is not None
        and (job.final.get("status") == "done" or bool(job.final.get("error")))
        for job in jobs
    )
    peak = server.sampler.peak_bytes
    checks = [
        Check(
            "bombs",
            "10 × 49 MP uploads: statuses",
            " ".join(f"{k}×{v}" for k, v in sorted(result["statuses"].items()))
            + f", answered in {_spread([a.elapsed_s for _, a in answers])}",
            "only 201/429/503",
            not unexpected,
        ),
        Check(
            "bombs",
            "peak RSS of the server tree",
            f"{peak / GB:.2f} GB (uploads {uploads_peak / GB:.2f}, jobs {jobs_peak / GB:.2f})"
            + (" (cap hit, killed)" if server.sampler.limit_hit else ""),
            f"< {BOMB_MEMORY_TARGET / GB:g} GB",
            peak < BOMB_MEMORY_TARGET,
        ),
        Check(
            "bombs",
            "accepted jobs ended (done, or failed with a reason)",
            f"{len(jobs)} accepted: "
            + ", ".join(f"{k} {v}" for k, v in sorted(outcomes["states"].items())),
            f"all, within {args.job_timeout:g} s",
            ended_ok,
        ),
    ]
    return result, checks
