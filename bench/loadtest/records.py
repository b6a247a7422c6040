"""One photo's way through the server as the client saw it: the state messages, the record
of a job, how it is counted (completed, failed, lost, refused) and how it is written out."""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass, field
from typing import Any

# Fields of a state message that would say when the server sent it (epoch seconds or ISO).
TIMESTAMP_FIELDS = ("sent_at", "published_at")


def parse_state_frame(frame: str | bytes) -> dict[str, Any] | None:
    """A websocket text frame as a job state (a JSON object with ``job`` and ``status``),
    else None."""
    try:
        value = json.loads(frame)
    except (TypeError, ValueError):
        return None
    if not isinstance(value, dict) or "job" not in value or "status" not in value:
        return None
    return value


def sent_timestamp(state: dict[str, Any]) -> float | None:
    """When the server says it sent this state (epoch seconds), from ``sent_at`` or
    ``published_at``: a number (seconds, or milliseconds when it is that large) or an ISO 8601
    string; None when there is none."""
    for name in TIMESTAMP_FIELDS:
        value = state.get(name)
        if isinstance(value, bool) or value is None:
            continue
        if isinstance(value, int | float):
            return float(value) / 1000 if value > 1e11 else float(value)
        if isinstance(value, str):
            try:
                moment = datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
            except ValueError:
                continue
            if moment.tzinfo is None:
                moment = moment.replace(tzinfo=datetime.UTC)
            return moment.timestamp()
    return None


def state_key(state: dict[str, Any]) -> tuple[str, str, int]:
    """What changes from one progress event to the next: (status, stage, percent)."""
    return (str(state.get("status")), str(state.get("stage")), int(state.get("percent") or 0))


@dataclass
class Message:
    """One state as the client saw it: ``at`` on the run's clock (monotonic seconds),
    ``wall`` the epoch time of arrival."""

    at: float
    wall: float
    state: dict[str, Any]


@dataclass
class JobRecord:
    """One photo's way through the server, from the first upload attempt to the download."""

    user: int
    photo: str
    web: str = ""
    socket_server: str = ""
    upload_started: float | None = None
    upload_answered: float | None = None
    upload_status: int | None = None
    upload_error: str = ""
    refusals: list[int] = field(default_factory=list)
    retries: int = 0
    job_id: str | None = None
    image_id: str | None = None
    initial: dict[str, Any] | None = None
    messages: list[Message] = field(default_factory=list)
    socket_error: str = ""
    socket_close_code: int | None = None
    polls: list[Message] = field(default_factory=list)
    polled_from: float | None = None
    fallback_polls: int = 0
    # Each new state the fallback polling saw (the socket's messages are in ``messages``).
    polled_states: list[Message] = field(default_factory=list)
    final: dict[str, Any] | None = None
    finished_at: float | None = None
    final_via: str = ""
    download_status: int | None = None
    download_bytes: int = 0
    download_retries: int = 0
    result_late_s: float | None = None
    png: bool = False

    def timeline(self) -> list[Message]:
        """Every state the client saw, from the socket or the fallback polling, in order."""
        return sorted([*self.messages, *self.polled_states], key=lambda m: m.at)

    @property
    def run_time(self) -> float | None:
        """First sight of ``running`` → the final state: the job's time on a worker, as the
        client saw it (None when it was never seen running)."""
        started = next((m.at for m in self.timeline() if m.state.get("status") == "running"), None)
        if started is None or self.finished_at is None:
            return None
        return self.finished_at - started

    @property
    def time_to_result(self) -> float | None:
        if self.upload_started is None or self.finished_at is None:
            return None
        return self.finished_at - self.upload_started


def classify(record: JobRecord) -> tuple[str, str]:
    """(outcome, reason). ``refused``: never accepted; ``completed``: done and its result
    downloaded as a PNG; ``failed``: the server ended it as failed; ``lost``: accepted but not
    finished by the deadline, or finished ``done`` without a downloadable PNG."""
    if record.job_id is None:
        answer = record.upload_status if record.upload_status is not None else "no answer"
        return "refused", f"upload answered {answer} {record.upload_error}".strip()
    if record.final is None:
        seen = record.timeline()
        last = str(seen[-1].state.get("status")) if seen else "nothing"
        return "lost", f"not finished by the deadline (last seen: {last})"
    status = str(record.final.get("status"))
    if status == "done":
        if record.png:
            return "completed", ""
        return "lost", f"done, but the download answered {record.download_status} (no PNG)"
    return "failed", str(record.final.get("error") or f"ended {status}")[:200]


def rounded(value: float | None, digits: int = 2) -> float | None:
    """``value`` rounded for the results, None kept."""
    return None if value is None else round(value, digits)


def record_json(record: JobRecord, t0: float) -> dict[str, Any]:
    """One job for the results file; times relative to the run's start."""

    def rel(at: float | None) -> float | None:
        return None if at is None else round(at - t0, 3)

    def compact(message: Message) -> list[Any]:
        s = message.state
        row = [rel(message.at), s.get("status"), s.get("stage"), s.get("percent")]
        sent = sent_timestamp(s)
        return row + ([round(message.wall - sent, 4)] if sent is not None else [])

    outcome, reason = classify(record)
    return {
        "user": record.user,
        "photo": record.photo,
        "web": record.web,
        "socket_server": record.socket_server,
        "job": record.job_id,
        "outcome": outcome,
        "reason": reason,
        "upload_started": rel(record.upload_started),
        "upload_answered": rel(record.upload_answered),
        "upload_status": record.upload_status,
        "refusals": record.refusals,
        "retries": record.retries,
        "finished_at": rel(record.finished_at),
        "time_to_result_s": rounded(record.time_to_result, 3),
        "run_time_s": rounded(record.run_time, 3),
        "final_via": record.final_via,
        "socket_error": record.socket_error,
        "socket_close_code": record.socket_close_code,
        "messages": [compact(m) for m in record.messages],
        "polled_states": [compact(m) for m in record.polled_states],
        "polls": len(record.polls),
        "fallback_polls": record.fallback_polls,
        "download_status": record.download_status,
        "result_late_s": rounded(record.result_late_s, 3),
        "download_bytes": record.download_bytes,
        "png": record.png,
    }
