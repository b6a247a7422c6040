"""Job state as the browser sees it, and how it travels: the Job row first, then the job's
channel group (``job-<uuid>``) for anyone watching live.

The in-memory channel layer is not thread-safe, so when job workers run as threads inside
the web server (the embedded default) events are handed to the server's event loop, which
``bind_server_loop`` records. Elsewhere (``manage.py db_worker``) they are sent directly;
with the in-memory layer nobody in that process listens, and browsers fall back to polling.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import uuid
from collections.abc import Callable
from typing import TypedDict

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.urls import reverse

from editor.models import Job

logger = logging.getLogger(__name__)

# Write the Job row at most on each stage change or this many percent of progress.
PERCENT_STEP = 5
# How long a worker waits for the server loop to accept an event before giving up on it.
PUBLISH_TIMEOUT_S = 5.0


class JobUrls(TypedDict):
    status: str
    socket: str
    editor: str
    thumb_original: str | None
    thumb_cutout: str | None
    cutout: str | None


class JobState(TypedDict):
    """One snapshot of a job, sent on connect, on every event and by the status URL."""

    job: str
    image: str
    status: str
    status_label: str
    stage: str
    stage_label: str
    percent: int
    error: str
    finished: bool
    urls: JobUrls


def job_group(job_id: uuid.UUID | str) -> str:
    return f"job-{job_id}"


def job_state(job: Job) -> JobState:
    done = job.status == Job.Status.DONE
    return {
        "job": str(job.id),
        "image": str(job.image_id),
        "status": job.status,
        "status_label": job.get_status_display(),
        "stage": job.stage,
        "stage_label": job.stage_label,
        "percent": int(job.percent),
        "error": job.error,
        "finished": job.finished,
        "urls": {
            "status": reverse("editor:job-status", args=[job.id]),
            "socket": f"/ws/jobs/{job.id}/",
            "editor": reverse("editor:image", args=[job.image_id]),
            "thumb_original": reverse("editor:job-file", args=[job.id, "thumb-original"])
            if done
            else None,
            "thumb_cutout": reverse("editor:job-file", args=[job.id, "thumb-cutout"])
            if done
            else None,
            "cutout": reverse("editor:job-file", args=[job.id, "cutout"]) if done else None,
        },
    }


_server_loop: asyncio.AbstractEventLoop | None = None
_server_loop_lock = threading.Lock()


def bind_server_loop(loop: asyncio.AbstractEventLoop) -> None:
    """Record the web server's event loop: in-process workers publish through it."""
    global _server_loop
    with _server_loop_lock:
        _server_loop = loop


def publish(state: JobState) -> None:
    """Send a job snapshot to everyone subscribed to the job. Never raises: a lost live
    event only delays the browser until its next event or poll."""
    layer = get_channel_layer()
    if layer is None:
        return
    # When it left the worker (epoch seconds), so clients can measure the live path's delay.
    message = {"type": "job.state", "state": {**state, "sent_at": time.time()}}
    group = job_group(state["job"])
    try:
        loop = _server_loop
        if loop is not None and loop.is_running():
            future = asyncio.run_coroutine_threadsafe(layer.group_send(group, message), loop)
            # Waiting keeps events in order; a worker thread is never the loop's own thread.
            future.result(timeout=PUBLISH_TIMEOUT_S)
        else:
            async_to_sync(layer.group_send)(group, message)
    except Exception:
        logger.exception("could not publish progress of job %s", state["job"])


class JobTimedOut(Exception):
    """The job ran past its time limit. The message is shown to the owner as it is."""


def describe_duration(seconds: float) -> str:
    """``90`` → "90 seconds", ``600`` → "10 minutes", for messages people read."""
    if seconds < 120:
        return f"{seconds:g} seconds"
    return f"{seconds / 60:g} minutes"


def time_limit_message(limit_s: float) -> str:
    return (
        f"Processing took longer than the {describe_duration(limit_s)} limit and was stopped. "
        "Try a smaller image, or turn matting off."
    )


class ProgressReporter:
    """The engine's progress callback for one run of a job: ``reporter(stage, fraction)``.

    Every write goes through the job's transitions with this run's token, then reaches the
    job's watchers; writes are throttled. Each call checks the time limit (``time_limit_s``,
    None or 0 for none) and raises JobTimedOut past it; a write that finds the job deleted,
    ended or taken over by another run raises JobGone. The seconds spent in each stage are
    recorded with the outcome.
    """

    def __init__(
        self, job: Job, time_limit_s: float | None = None, token: str | None = None
    ) -> None:
        """``token``: the run to report for (default: a new run, begun by ``start``)."""
        self.job = job
        self.token = token or uuid.uuid4().hex
        self.time_limit_s = time_limit_s or None
        self._deadline: float | None = None
        self._written_percent = job.percent
        self._written_stage = job.stage
        self._stage_started = time.monotonic()
        self.stage_seconds: dict[str, float] = {}

    def __call__(self, stage: str, fraction: float) -> None:
        self.check_time_limit()
        percent = max(0, min(100, round(fraction * 100)))
        # The bar never moves backwards, even if an engine call restarts its own count.
        percent = max(percent, self.job.percent)
        self._enter(stage)
        if stage != self._written_stage or percent - self._written_percent >= PERCENT_STEP:
            self._written_stage = stage
            self._written_percent = percent
            self.job.record_progress(self.token, stage, percent)
            publish(job_state(self.job))
        else:
            self.job.stage, self.job.percent = stage, percent

    def _enter(self, stage: str) -> None:
        now = time.monotonic()
        current = self.job.stage
        if stage != current:
            self.stage_seconds[current] = round(
                self.stage_seconds.get(current, 0.0) + now - self._stage_started, 3
            )
            self._stage_started = now

    def check_time_limit(self) -> None:
        if self._deadline is not None and time.monotonic() > self._deadline:
            assert self.time_limit_s is not None
            raise JobTimedOut(time_limit_message(self.time_limit_s))

    def span(self, start: float, end: float) -> Callable[[str, float], None]:
        def report(stage: str, fraction: float) -> None:
            self(stage, start + (end - start) * max(0.0, min(1.0, fraction)))

        return report

    def start(self) -> None:
        self.job.start(self.token)
        self._written_stage, self._written_percent = self.job.stage, 0
        self._stage_started = time.monotonic()
        if self.time_limit_s is not None:
            self._deadline = time.monotonic() + self.time_limit_s
        publish(job_state(self.job))

    def beat(self) -> None:
        """Tell the database this run is alive (called from the heartbeat thread)."""
        Job(pk=self.job.pk).beat(self.token)

    def succeed(self, tell_watchers: bool = True) -> None:
        """Mark the job done; with ``tell_watchers`` False the caller publishes the state
        itself, after the transaction that stores the result commits (a browser told "done"
        earlier would ask for files it cannot see yet)."""
        self._enter("done")
        self.job.succeed(self.token, self.stage_seconds)
        if tell_watchers:
            publish(job_state(self.job))

    def fail(self, reason: str) -> None:
        self._enter("failed")
        self.job.fail(reason, self.token, stage_seconds=self.stage_seconds)
        publish(job_state(self.job))
