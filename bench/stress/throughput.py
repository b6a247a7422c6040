"""Scenario ``throughput``: 30 real photos from 5 polite clients; wall time and photos/min."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.loopback.client import MAX_RETRY_WAIT_S, Answer, Client
from bench.loopback.memory import GB
from bench.loopback.runs import shared_root, sod_photos
from bench.stress.jobs import Tracked, job_outcomes, track, wait_for_jobs
from bench.stress.report import Check
from bench.stress.server import Server

THROUGHPUT_PHOTOS = 30
THROUGHPUT_CLIENTS = 5


def _upload_politely(
    client: Client, name: str, data: bytes, timeout_s: float, attempts: int = 4
) -> tuple[Answer, int]:
    """Upload, honouring Retry-After on 429/503 a few times; the answer and refusal count."""
    refusals = 0
    while True:
        answer = client.upload(name, data, timeout_s)
        wait = answer.retry_after_s
        if answer.status not in (429, 503) or wait is None or refusals + 1 >= attempts:
            return answer, refusals + (answer.status in (429, 503))
        refusals += 1
        time.sleep(min(max(wait, 0.5), MAX_RETRY_WAIT_S))


def scenario_throughput(
    server: Server, args: argparse.Namespace
) -> tuple[dict[str, Any], list[Check]]:
    photos = sod_photos()[:THROUGHPUT_PHOTOS]
    if len(photos) < THROUGHPUT_PHOTOS:
        raise RuntimeError(f"need {THROUGHPUT_PHOTOS} photos in {shared_root()}/eval/sod/images")
    per_client = THROUGHPUT_PHOTOS // THROUGHPUT_CLIENTS
    began = time.monotonic()

    def one(index: int) -> list[tuple[Tracked | None, Answer, int]]:
        client = Client(server.url, args.upload_timeout)
        client.open_page()
        sent = []
        for photo in photos[index * per_client : (index + 1) * per_client]:
            answer, refusals = _upload_politely(
                client, photo.name, photo.read_bytes(), args.upload_timeout
            )
            sent.append((track(client, answer), answer, refusals))
        return sent

    with ThreadPoolExecutor(THROUGHPUT_CLIENTS) as pool:
        sent = [item for batch in pool.map(one, range(THROUGHPUT_CLIENTS)) for item in batch]
    uploaded_s = time.monotonic() - began
    jobs = [job for job, _, _ in sent if job is not None]
    wait_for_jobs(jobs, time.monotonic() + args.job_timeout)
    ends = [job.finished_at for job in jobs if job.finished_at is not None]
    wall = (max(ends) - began) if ends else None
    outcomes = job_outcomes(jobs)
    done = outcomes["states"].get("done", 0)
    result = {
        "photos": [p.name for p in photos],
        "upload_statuses": dict(Counter(str(answer.status) for _, answer, _ in sent)),
        "refusals_waited_out": sum(r for _, _, r in sent),
        "uploads_s": round(uploaded_s, 2),
        "wall_s": round(wall, 2) if wall is not None else None,
        "photos_per_minute": round(done / wall * 60, 2) if wall else None,
        "jobs": outcomes,
    }
    checks = [
        Check(
            "throughput",
            "30 photos, 5 clients: wall time, photos/min",
            f"{wall:.1f} s, {result['photos_per_minute']}/min" if wall else "no job ended",
            "—",
            None,
        ),
        Check(
            "throughput",
            "peak RSS of the server tree",
            f"{server.sampler.peak_bytes / GB:.2f} GB",
            "—",
            None,
        ),
        Check(
            "throughput",
            "jobs done",
            ", ".join(f"{k} {v}" for k, v in sorted(outcomes["states"].items()))
            + f" (of {THROUGHPUT_PHOTOS} photos)",
            f"{THROUGHPUT_PHOTOS} done",
            done == THROUGHPUT_PHOTOS,
        ),
    ]
    return result, checks
