"""Scenario ``tiff``: a 60,000-page TIFF upload, and a page that must keep answering beside it."""

from __future__ import annotations

import argparse
import statistics
import threading
import time
from collections import Counter
from typing import Any

from bench.loopback.client import Answer, Client
from bench.stress.files import TIFF_PAGES, many_page_tiff
from bench.stress.report import Check
from bench.stress.server import Server

# The hostile upload and the pings of the page beside it must each answer within this.
TIFF_ANSWER_TARGET_S = 5.0
PING_INTERVAL_S = 0.2
PING_TIMEOUT_S = 30.0


def _seconds(answer: Answer) -> str:
    if answer.status is None:
        return f"no answer ({answer.error.split(':')[0]}) after {answer.elapsed_s:.1f} s"
    return f"{answer.status} in {answer.elapsed_s:.2f} s"


class Pinger:
    """One client (cookies kept) GETting / every PING_INTERVAL_S; records each latency."""

    def __init__(self, base_url: str) -> None:
        self.client = Client(base_url, PING_TIMEOUT_S)
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pinger", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.answers.append(self.client.open_page())
            self._stop.wait(max(0.0, PING_INTERVAL_S - (time.monotonic() - started)))

    def __enter__(self) -> Pinger:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=PING_TIMEOUT_S + 5)


def scenario_tiff(server: Server, args: argparse.Namespace) -> tuple[dict[str, Any], list[Check]]:
    data = many_page_tiff()
    with Pinger(server.url) as pinger:
        time.sleep(1.0)  # a few pings of the idle server first, for comparison
        uploader = Client(server.url)
        uploader.open_page()
        answer = uploader.upload("pages.tif", data, timeout_s=args.tiff_timeout)
        time.sleep(2.0)  # and a few after the answer: is the server still with us?
    after = Client(server.url, timeout_s=10).open_page()
    pings = pinger.answers
    latencies = [a.elapsed_s for a in pings]
    failed = [a for a in pings if a.status != 200]
    worst = max(latencies, default=0.0)
    result = {
        "file_bytes": len(data),
        "pages": TIFF_PAGES,
        "upload": answer.summary(),
        "pings": len(pings),
        "pings_failed": len(failed),
        "ping_failures": Counter(str(a.status or a.error.split(":")[0]) for a in failed),
        "ping_worst_s": round(worst, 3),
        "ping_median_s": round(statistics.median(latencies), 3) if latencies else None,
        "get_after": after.summary(),
    }
    answered = answer.status is not None and answer.elapsed_s <= TIFF_ANSWER_TARGET_S
    kept = not failed and worst <= TIFF_ANSWER_TARGET_S and after.status == 200
    checks = [
        Check(
            "tiff",
            "60,000-page TIFF upload answered",
            _seconds(answer),
            f"≤ {TIFF_ANSWER_TARGET_S:g} s",
            answered,
        ),
        Check(
            "tiff",
            "GET / every 0.2 s meanwhile: worst, failed",
            f"{worst:.2f} s, {len(failed)}/{len(pings)} failed",
            f"all 200, ≤ {TIFF_ANSWER_TARGET_S:g} s",
            kept,
        ),
    ]
    return result, checks
