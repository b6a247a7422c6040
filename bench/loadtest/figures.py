"""The figures of one topology's run: percentiles, the socket's latency and the summary."""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Iterable, Sequence
from typing import Any

from bench.loadtest.records import JobRecord, classify, rounded, sent_timestamp, state_key


def percentile(values: Iterable[float], q: float) -> float | None:
    """The q-th percentile (0–100) with linear interpolation between ranks, as numpy's
    default; None for no values."""
    data = sorted(values)
    if not data:
        return None
    position = (len(data) - 1) * min(100.0, max(0.0, q)) / 100
    low = math.floor(position)
    high = min(low + 1, len(data) - 1)
    return data[low] + (data[high] - data[low]) * (position - low)


def socket_latencies(record: JobRecord) -> tuple[list[float], str]:
    """The delays of this job's worker events on their way to the client, in seconds, and how
    they were measured.

    With a timestamp in the messages (``sent_at``): arrival − sent, for every message but the
    first (the snapshot the server sends on connect, which no worker event caused). Without:
    each (status, stage, percent) the socket delivered after polling began, arrival on the
    socket − first sight by polling (every LATENCY_POLL_S): a lower bound within one poll
    interval, negative when the socket was faster than the poll."""
    events = record.messages[1:]
    stamped = [(m.wall, sent_timestamp(m.state)) for m in events]
    if any(sent is not None for _, sent in stamped):
        return [wall - sent for wall, sent in stamped if sent is not None], "sent_at"
    if record.polled_from is None or not record.polls:
        return [], ""
    polled: dict[tuple[str, str, int], float] = {}
    for poll in record.polls:
        polled.setdefault(state_key(poll.state), poll.at)
    seen: dict[tuple[str, str, int], float] = {}
    for message in events:
        if message.at >= record.polled_from:
            seen.setdefault(state_key(message.state), message.at)
    return [at - polled[key] for key, at in seen.items() if key in polled], "polling"


def summarize(records: Sequence[JobRecord]) -> dict[str, Any]:
    """Counts, times and reasons over one run's jobs."""
    outcomes = Counter()
    reasons: Counter[str] = Counter()
    for record in records:
        outcome, reason = classify(record)
        outcomes[outcome] += 1
        if reason:
            reasons[f"{outcome}: {reason}"] += 1
    times = [r.time_to_result for r in records if classify(r)[0] == "completed"]
    times = [t for t in times if t is not None]
    runs = [r.run_time for r in records if classify(r)[0] == "completed"]
    runs = [t for t in runs if t is not None]
    latencies: list[float] = []
    methods: Counter[str] = Counter()
    for record in records:
        values, method = socket_latencies(record)
        latencies += values
        if values:
            methods[method] += 1
    starts = [r.upload_started for r in records if r.upload_started is not None]
    ends = [r.finished_at for r in records if classify(r)[0] == "completed" and r.finished_at]
    span = (max(ends) - min(starts)) if starts and ends else None
    refusals = Counter(str(status) for r in records for status in r.refusals)
    return {
        "photos": len(records),
        "completed": outcomes["completed"],
        "failed": outcomes["failed"],
        "lost": outcomes["lost"],
        "refused": outcomes["refused"],
        "reasons": dict(reasons),
        "time_to_result_p50_s": rounded(percentile(times, 50)),
        "time_to_result_p95_s": rounded(percentile(times, 95)),
        "time_to_result_max_s": rounded(max(times, default=None)),
        "run_time_p50_s": rounded(percentile(runs, 50)),
        "run_time_p95_s": rounded(percentile(runs, 95)),
        "socket_latency_p50_s": rounded(percentile(latencies, 50), 4),
        "socket_latency_p95_s": rounded(percentile(latencies, 95), 4),
        "socket_latency_samples": len(latencies),
        "socket_latency_method": "+".join(sorted(methods)) or "none",
        "span_s": rounded(span),
        "images_per_minute": rounded(outcomes["completed"] / span * 60 if span else None),
        "upload_refusals": dict(refusals),
        "upload_retries": sum(r.retries for r in records),
        "download_retries": sum(r.download_retries for r in records),
        # "done" arrived, but the result answered 404 at first (ready this much later).
        "results_late": sum(1 for r in records if r.result_late_s is not None),
        "results_late_max_s": rounded(
            max((r.result_late_s for r in records if r.result_late_s is not None), default=None)
        ),
        "socket_messages": sum(len(r.messages) for r in records),
        "socket_errors": dict(Counter(r.socket_error for r in records if r.socket_error)),
        "finished_via": dict(Counter(r.final_via for r in records if r.final_via)),
        "fallback_polls": sum(r.fallback_polls for r in records),
    }
