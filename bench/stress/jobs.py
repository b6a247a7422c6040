"""Uploads from strangers and the jobs the server accepted, polled with their uploader's
cookies until they end, and how they ended."""

from __future__ import annotations

import time
from collections import Counter
from dataclasses import dataclass
from typing import Any

from bench.loopback.client import Answer, Client


def stranger_upload(
    base_url: str, name: str, data: bytes, timeout_s: float
) -> tuple[Client, Answer]:
    """A fresh cookie jar: GET / for the token, then one upload."""
    client = Client(base_url, timeout_s)
    client.open_page()
    return client, client.upload(name, data, timeout_s)


@dataclass
class Tracked:
    """A job accepted by the server, polled with the cookies of the client that sent it."""

    client: Client
    status_url: str
    final: dict[str, Any] | None = None
    finished_at: float | None = None


def track(client: Client, answer: Answer) -> Tracked | None:
    document = answer.json() or {}
    urls = document.get("urls")
    if answer.status != 201 or not isinstance(urls, dict) or not urls.get("status"):
        return None
    return Tracked(client, str(urls["status"]))


def wait_for_jobs(jobs: list[Tracked], deadline: float, interval_s: float = 0.5) -> None:
    """Poll every unfinished job round-robin until each is finished or the deadline passes."""
    pending = [job for job in jobs if job.final is None]
    while pending and time.monotonic() < deadline:
        for job in pending:
            state = job.client.job_state(job.status_url)
            if state is not None and state.get("finished"):
                job.final, job.finished_at = state, time.monotonic()
        pending = [job for job in pending if job.final is None]
        if pending:
            time.sleep(interval_s)


def job_outcomes(jobs: list[Tracked]) -> dict[str, Any]:
    states = Counter(
        "unfinished" if job.final is None else str(job.final.get("status")) for job in jobs
    )
    reasons = Counter(
        str(job.final.get("error") or "(no reason given)")[:200]
        for job in jobs
        if job.final is not None and job.final.get("status") != "done"
    )
    return {"states": dict(states), "failure_reasons": dict(reasons)}
