"""Scenario ``burst``: 80 uploads from fresh cookie jars, 8 at a time; a refusal must say
when to come back (Retry-After)."""

from __future__ import annotations

import argparse
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from bench.stress.files import small_jpeg
from bench.stress.jobs import stranger_upload
from bench.stress.report import Check
from bench.stress.server import Server

BURST_UPLOADS = 80
BURST_CONCURRENCY = 8


def scenario_burst(server: Server, args: argparse.Namespace) -> tuple[dict[str, Any], list[Check]]:
    data = small_jpeg(128)
    began = time.monotonic()
    with ThreadPoolExecutor(BURST_CONCURRENCY) as pool:
        answers = [
            answer
            for _, answer in pool.map(
                lambda i: stranger_upload(server.url, f"burst-{i}.jpg", data, 60),
                range(BURST_UPLOADS),
            )
        ]
    elapsed = time.monotonic() - began
    refused = [a for a in answers if a.status in (429, 503)]
    with_retry = [a for a in refused if a.retry_after_s is not None]
    first_refused = next((i for i, a in enumerate(answers) if a.status in (429, 503)), None)
    result = {
        "uploads": BURST_UPLOADS,
        "concurrency": BURST_CONCURRENCY,
        "elapsed_s": round(elapsed, 2),
        "statuses": dict(Counter(str(a.status) for a in answers)),
        "refused_with_retry_after": len(with_retry),
        "first_refused_index": first_refused,
        "retry_after_values": sorted({a.headers.get("retry-after", "") for a in with_retry}),
        "errors": dict(Counter(a.summary()["error"] for a in answers if a.status != 201)),
    }
    checks = [
        Check(
            "burst",
            "80 uploads from fresh cookie jars: statuses",
            " ".join(f"{k}×{v}" for k, v in sorted(result["statuses"].items())),
            "—",
            None,
        ),
        Check(
            "burst",
            "a 429/503 with Retry-After arrived",
            f"{len(with_retry)} of {BURST_UPLOADS}",
            "≥ 1",
            bool(with_retry),
        ),
    ]
    return result, checks
