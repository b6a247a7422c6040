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
The building blocks (HTTP client, server start and stop, /proc sampling) are bench.stress's.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime
import functools
import importlib
import json
import math
import os
import re
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import unquote, urlsplit

from bench.stress import (
    DAPHNE_OPTIONS,
    GB,
    HARNESS_ROOT,
    MAX_RETRY_WAIT_S,
    MB,
    Answer,
    Client,
    ServerConfig,
    _stop_tree,
    _wait_until_up,
    free_port,
    git_commit,
    memory_total_bytes,
    open_run,
    prepare,
    process_tree,
    rss_bytes,
    settings_names,
    shared_root,
    write_results,
)

TOPOLOGIES = ("embedded", "scaleout")
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"

# The browser polls the status URL this often when its socket is gone (static/js/jobs.js).
FALLBACK_POLL_S = 1.0
# Without a timestamp in the state messages, running jobs are polled this often to see when
# each state reached the database: the socket's delay is measured against that.
LATENCY_POLL_S = 0.2
SAMPLE_INTERVAL_S = 0.25
UPLOAD_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 60.0
SOCKET_OPEN_TIMEOUT_S = 30.0
MAX_UPLOAD_ATTEMPTS = 30
MAX_DOWNLOAD_ATTEMPTS = 20
# A finished job's result that answers 404 is asked for again for this long before it counts
# as missing (and the job as lost).
LATE_RESULT_WAIT_S = 3.0
WORKER_START_TIMEOUT_S = 60.0
# The worker to kill must be running a job; it is looked for this long after the trigger.
KILL_SEARCH_S = 60.0
# Fields of a state message that would say when the server sent it (epoch seconds or ISO).
TIMESTAMP_FIELDS = ("sent_at", "published_at")
# "Task id=<uuid> path=editor.tasks.process_job state=RUNNING" (django_tasks' own log line).
TASK_LINE = re.compile(r"Task id=(\S+) path=\S+ state=(\w+)")

T = TypeVar("T")


def log(message: str) -> None:
    print(f"[loadtest] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- figures


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
        "time_to_result_p50_s": _round(percentile(times, 50)),
        "time_to_result_p95_s": _round(percentile(times, 95)),
        "time_to_result_max_s": _round(max(times, default=None)),
        "run_time_p50_s": _round(percentile(runs, 50)),
        "run_time_p95_s": _round(percentile(runs, 95)),
        "socket_latency_p50_s": _round(percentile(latencies, 50), 4),
        "socket_latency_p95_s": _round(percentile(latencies, 95), 4),
        "socket_latency_samples": len(latencies),
        "socket_latency_method": "+".join(sorted(methods)) or "none",
        "span_s": _round(span),
        "images_per_minute": _round(outcomes["completed"] / span * 60 if span else None),
        "upload_refusals": dict(refusals),
        "upload_retries": sum(r.retries for r in records),
        "download_retries": sum(r.download_retries for r in records),
        # "done" arrived, but the result answered 404 at first (ready this much later).
        "results_late": sum(1 for r in records if r.result_late_s is not None),
        "results_late_max_s": _round(
            max((r.result_late_s for r in records if r.result_late_s is not None), default=None)
        ),
        "socket_messages": sum(len(r.messages) for r in records),
        "socket_errors": dict(Counter(r.socket_error for r in records if r.socket_error)),
        "finished_via": dict(Counter(r.final_via for r in records if r.final_via)),
        "fallback_polls": sum(r.fallback_polls for r in records),
    }


def _round(value: float | None, digits: int = 2) -> float | None:
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
        "time_to_result_s": _round(record.time_to_result, 3),
        "run_time_s": _round(record.run_time, 3),
        "final_via": record.final_via,
        "socket_error": record.socket_error,
        "socket_close_code": record.socket_close_code,
        "messages": [compact(m) for m in record.messages],
        "polled_states": [compact(m) for m in record.polled_states],
        "polls": len(record.polls),
        "fallback_polls": record.fallback_polls,
        "download_status": record.download_status,
        "result_late_s": _round(record.result_late_s, 3),
        "download_bytes": record.download_bytes,
        "png": record.png,
    }


# --------------------------------------------------------------------------- memory


def process_label(pid: int) -> str:
    """What a process is, from its command line: ``daphne``, ``db_worker``, ``engine`` (a
    spawned multiprocessing child: the job engine), ``resource tracker`` or the program."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = b" ".join(argv).decode(errors="replace")
    if "spawn_main" in text:
        return "engine"
    if "resource_tracker" in text:
        return "resource tracker"
    if "daphne" in text:
        return "daphne"
    if "db_worker" in text:
        return "db_worker"
    return Path(argv[0].decode(errors="replace")).name or "?"


class RoleSampler:
    """Samples the RSS of each process of each role's tree (bench.stress's /proc scan) in a
    thread: the peak of every process, its label, and the peak of each tree's sum."""

    def __init__(self, roles: dict[str, int], interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.roles = dict(roles)
        self.interval_s = interval_s
        self.process_peaks: dict[int, int] = {}
        self.process_roles: dict[int, tuple[str, str]] = {}
        self.tree_peaks: dict[str, int] = dict.fromkeys(roles, 0)
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="role-sampler", daemon=True)

    def sample(self) -> dict[str, int]:
        """One pass; returns each role's tree sum now."""
        sums: dict[str, int] = {}
        for role, root in self.roles.items():
            total = 0
            for pid in process_tree(root):
                rss = rss_bytes(pid)
                if rss == 0:
                    continue  # gone, or a zombie
                if pid not in self.process_roles:
                    self.process_roles[pid] = (role, process_label(pid))
                self.process_peaks[pid] = max(self.process_peaks.get(pid, 0), rss)
                total += rss
            sums[role] = total
            self.tree_peaks[role] = max(self.tree_peaks.get(role, 0), total)
        self.samples += 1
        return sums

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def start(self) -> RoleSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)

    def peaks(self) -> list[dict[str, Any]]:
        """Per role and kind of process: the largest single process's peak and how many
        processes of that kind were seen (an engine child is replaced now and then)."""
        grouped: dict[tuple[str, str], list[int]] = {}
        for pid, key in self.process_roles.items():
            grouped.setdefault(key, []).append(pid)
        rows = []
        for role in self.roles:
            for (owner, label), pids in sorted(grouped.items()):
                if owner == role:
                    rows.append(
                        {
                            "role": role,
                            "process": label,
                            "peak_bytes": max(self.process_peaks[p] for p in pids),
                            "processes_seen": len(pids),
                        }
                    )
            rows.append(
                {
                    "role": role,
                    "process": "tree (sum)",
                    "peak_bytes": self.tree_peaks.get(role, 0),
                    "processes_seen": sum(len(p) for (o, _), p in grouped.items() if o == role),
                }
            )
        return rows


# --------------------------------------------------------------------------- processes


@dataclass
class Proc:
    role: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""


@contextmanager
def started(
    role: str, command: list[str], config: ServerConfig, env: dict[str, str]
) -> Iterator[Proc]:
    """A server process in a session of its own (so its whole tree can be stopped), its
    output in the run's log folder; stopped (bench.stress's way) on exit."""
    log_path = config.log_dir / f"{role}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=config.repo,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield Proc(role, process, log_path)
        finally:
            _stop_tree(process)


@contextmanager
def web_server(role: str, config: ServerConfig, env: dict[str, str]) -> Iterator[Proc]:
    port = free_port()
    command = [config.python, "-m", "daphne", *DAPHNE_OPTIONS, "-b", "127.0.0.1", "-p", str(port)]
    with started(role, [*command, "bgremover.asgi:application"], config, env) as proc:
        proc.url = f"http://127.0.0.1:{port}"
        _wait_until_up(proc.url, proc.process, proc.log_path)
        yield proc


@contextmanager
def db_worker(role: str, config: ServerConfig, env: dict[str, str]) -> Iterator[Proc]:
    command = [config.python, "manage.py", "db_worker", "--no-reload", "--no-startup-delay"]
    with started(role, [*command, "--interval", "0.2", "--worker-id", role], config, env) as proc:
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        while time.monotonic() < deadline and proc.process.poll() is None:
            if "Starting worker" in proc.log_path.read_text(errors="replace"):
                break
            time.sleep(0.3)
        if proc.process.poll() is not None:
            tail = proc.log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"{role} exited early:\n{tail}")
        yield proc


def running_task(log_path: Path) -> str | None:
    """The task a db_worker is running now according to its log (its last task line says
    RUNNING), else None."""
    try:
        text = log_path.read_text(errors="replace")
    except OSError:
        return None
    lines = TASK_LINE.findall(text)
    if lines and lines[-1][1] == "RUNNING":
        return lines[-1][0]
    return None


def database_env(database_url: str, read_names: Iterable[str]) -> dict[str, str]:
    """DATABASE_URL, and the DB/DB_* variables older settings read instead (when the
    settings do not read DATABASE_URL)."""
    env = {"DATABASE_URL": database_url}
    if "DATABASE_URL" in set(read_names):
        return env
    parts = urlsplit(database_url)
    env.update(
        {
            "DB": "postgres",
            "DB_NAME": parts.path.lstrip("/") or "postgres",
            "DB_USER": unquote(parts.username or ""),
            "DB_PASSWORD": unquote(parts.password or ""),
            "DB_HOST": parts.hostname or "",
            "DB_PORT": str(parts.port or ""),
        }
    )
    return env


def server_limits(args: argparse.Namespace, repo: Path) -> dict[str, str]:
    """Limits raised so that ordinary load is not refused (all from one address, 127.0.0.1):
    rate limits off, queue caps and socket caps above what the run can reach."""
    per_user = math.ceil(args.photos / args.users)
    limits = {
        "JOB_QUEUE_LIMIT": str(args.photos + args.users),
        "JOB_QUEUE_LIMIT_PER_OWNER": str(max(20, per_user + 5)),
        "WEBSOCKET_MAX_PER_ADDRESS": str(args.photos + args.users),
        "WEBSOCKET_MAX_PER_OWNER": str(max(20, per_user + 5)),
        "RATE_LIMIT_UPLOADS": "off",
        "RATE_LIMIT_DOWNLOADS": "off",
    }
    limits.update(
        dict.fromkeys((n for n in settings_names(repo) if n.startswith("RATE_LIMIT")), "off")
    )
    return limits


@dataclass
class Topology:
    name: str
    webs: list[Proc]
    workers: list[Proc]
    env: dict[str, str]


@contextmanager
def embedded(config: ServerConfig, args: argparse.Namespace) -> Iterator[Topology]:
    with tempfile.TemporaryDirectory(prefix="loadtest-embedded-") as scratch:
        overrides = {**server_limits(args, config.repo), **args.server_env}
        env = config.environment(Path(scratch) / "data", overrides)
        config.manage(env, "migrate", "--noinput", "-v", "0")
        with web_server("embedded-web", config, env) as web:
            yield Topology("embedded", [web], [], overrides)


@contextmanager
def scaleout(config: ServerConfig, args: argparse.Namespace) -> Iterator[Topology]:
    try:
        services = importlib.import_module("tests.services")
    except ImportError as exc:
        raise RuntimeError(f"scaleout needs tests/services.py ({exc})") from exc
    missing = subprocess.run(
        [config.python, "-c", "import psycopg, channels_redis"], capture_output=True, text=True
    )
    if missing.returncode != 0:
        raise RuntimeError(
            "scaleout needs psycopg and channels-redis in the server's Python "
            f"({missing.stderr.strip().splitlines()[-1]}): pip install -e '.[dev]'"
        )
    # The folder outlives the processes that use it (an ExitStack unwinds first).
    with tempfile.TemporaryDirectory(prefix="loadtest-scaleout-") as scratch, ExitStack() as stack:
        database_url = stack.enter_context(services.postgres_server())
        redis_url = stack.enter_context(services.redis_server())
        overrides = {
            **server_limits(args, config.repo),
            **database_env(database_url, settings_names(config.repo)),
            "REDIS_URL": redis_url,
            "INPROCESS_WORKERS": "0",
            # Short, so that a killed worker's job is taken over within the run.
            "JOB_HEARTBEAT_TIMEOUT_S": str(args.heartbeat_timeout),
            "PURGE_INTERVAL_S": "5",
            **args.server_env,
        }
        # One environment for all: the same SECRET_KEY (sessions are signed with it), the
        # same media folder and database.
        env = config.environment(Path(scratch) / "data", overrides)
        config.manage(env, "migrate", "--noinput", "-v", "0")
        webs = [stack.enter_context(web_server(f"web-{i}", config, env)) for i in (1, 2)]
        workers = [stack.enter_context(db_worker(f"worker-{i}", config, env)) for i in (1, 2)]
        shown = {k: ("…" if k.endswith(("_URL", "PASSWORD")) else v) for k, v in overrides.items()}
        yield Topology("scaleout", webs, workers, shown)


# --------------------------------------------------------------------------- the load


def load_photos(count: int) -> list[tuple[str, bytes]]:
    folder = shared_root() / "eval" / "sod" / "images"
    files = sorted(folder.glob("*.jpg"))
    if not files:
        raise RuntimeError(f"no photos in {folder}: set BGREMOVER_SHARED")
    unique = {f: f.read_bytes() for f in files[: min(count, len(files))]}
    chosen = [files[i % len(files)] for i in range(count)]
    return [(f"{i:03d}-{f.name}", unique[f]) for i, f in enumerate(chosen)]


def shares(items: Sequence[T], users: int) -> list[list[T]]:
    """Item i goes to user i mod users, in order."""
    return [list(items[u::users]) for u in range(users)]


class LoadRun:
    """The client side of one topology's run: users, sockets, polls and downloads."""

    def __init__(self, topology: Topology, args: argparse.Namespace, deadline: float) -> None:
        self.topology = topology
        self.args = args
        self.deadline = deadline
        self.records: list[JobRecord] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.latency_polling = True
        self.latency_slots = max(0, args.latency_polls)
        self.finished = 0
        self.t0 = time.monotonic()
        self.kill: dict[str, Any] = {}
        self.executor = ThreadPoolExecutor(max_workers=args.users + 24)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """A blocking call (bench.stress's client) in a thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args))

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def endpoints(self, user: int) -> tuple[str, str]:
        """(HTTP server, websocket server) of a user: with two web processes, never the same."""
        webs = self.topology.webs
        return webs[user % len(webs)].url, webs[(user + 1) % len(webs)].url

    # ---- one user

    async def user(self, index: int, photos: list[tuple[str, bytes]]) -> None:
        web, socket_server = self.endpoints(index)
        client = Client(web, timeout_s=REQUEST_TIMEOUT_S)
        await self.call(client.open_page)
        for name, data in photos:
            record = JobRecord(index, name, web, socket_server)
            self.records.append(record)
            record.upload_started = time.monotonic()
            answer = await self.upload(client, record, name, data)
            record.upload_answered = time.monotonic()
            record.upload_status = answer.status
            state = answer.json() or {}
            if answer.status != 201 or not state.get("job"):
                record.upload_error = answer.summary()["error"][:200]
                continue
            record.job_id, record.image_id = str(state["job"]), str(state.get("image"))
            record.initial = state
            self.spawn(self.follow(record, dict(client.cookies), state))

    async def upload(self, client: Client, record: JobRecord, name: str, data: bytes) -> Answer:
        """Upload, waiting out 429/503 as Retry-After says (until the deadline)."""
        while True:
            answer = await self.call(client.upload, name, data, UPLOAD_TIMEOUT_S)
            if answer.status not in (429, 503):
                return answer
            record.refusals.append(answer.status)
            wait = min(max(answer.retry_after_s or 1.0, 0.2), MAX_RETRY_WAIT_S)
            if len(record.refusals) >= MAX_UPLOAD_ATTEMPTS or wait >= self.left():
                return answer
            record.retries += 1
            await asyncio.sleep(wait)

    # ---- one job

    async def follow(self, record: JobRecord, cookies: dict[str, str], state: dict) -> None:
        if state.get("finished"):
            self.finish(record, state, "upload")
        else:
            await self.watch_socket(record, cookies, state)
            if record.final is None:
                await self.poll_until_finished(record, cookies, state)
        if record.final is not None and record.final.get("status") == "done":
            await self.download(record, cookies)

    def finish(self, record: JobRecord, state: dict[str, Any], via: str) -> None:
        if record.final is None:
            record.final, record.finished_at, record.final_via = state, time.monotonic(), via
            self.finished += 1

    async def watch_socket(self, record: JobRecord, cookies: dict[str, str], state: dict) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        server = record.socket_server
        uri = "ws" + server.removeprefix("http") + state["urls"]["socket"]
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        poller: asyncio.Task[None] | None = None
        try:
            async with connect(
                uri,
                origin=server,  # type: ignore[arg-type]  (the server's own origin)
                additional_headers=headers,
                proxy=None,
                open_timeout=SOCKET_OPEN_TIMEOUT_S,
                max_size=1 << 20,
            ) as socket:
                async for frame in socket:
                    message = Message(time.monotonic(), time.time(), parse_state_frame(frame) or {})
                    if not message.state:
                        record.socket_error = "unreadable frame"
                        continue
                    record.messages.append(message)
                    if message.state.get("finished"):
                        self.finish(record, message.state, "socket")
                        break
                    if poller is None and self.wants_latency_poll(record, message):
                        poller = asyncio.create_task(self.poll_for_latency(record, cookies))
                record.socket_close_code = socket.close_code
        except InvalidStatus as exc:
            record.socket_error = f"handshake refused ({exc.response.status_code})"
        except (OSError, TimeoutError, WebSocketException) as exc:
            record.socket_error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            if poller is not None:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)
                self.latency_slots += 1

    def wants_latency_poll(self, record: JobRecord, message: Message) -> bool:
        """Poll a running job beside its socket when the messages carry no timestamp, for at
        most --latency-polls jobs at once."""
        if not self.latency_polling or message.state.get("status") != "running":
            return False
        if sent_timestamp(message.state) is not None:
            self.latency_polling = False  # the server stamps its messages: no need
            return False
        if self.latency_slots <= 0:
            return False
        self.latency_slots -= 1
        return True

    async def poll_for_latency(self, record: JobRecord, cookies: dict[str, str]) -> None:
        client = self.client_for(record.web, cookies)
        record.polled_from = time.monotonic()
        while record.final is None:
            state = await self.call(client.job_state, self.status_url(record), REQUEST_TIMEOUT_S)
            if state is not None:
                record.polls.append(Message(time.monotonic(), time.time(), state))
                if state.get("finished"):
                    return
            await asyncio.sleep(LATENCY_POLL_S)

    async def poll_until_finished(
        self, record: JobRecord, cookies: dict[str, str], state: dict
    ) -> None:
        """The browser's fallback: the status URL once a second until the job is finished."""
        client = self.client_for(record.web, cookies)
        while record.final is None:
            answer = await self.call(client.request, "GET", self.status_url(record))
            record.fallback_polls += 1
            polled = answer.json() if answer.status == 200 else None
            if polled and (
                not record.polled_states
                or state_key(polled) != state_key(record.polled_states[-1].state)
            ):
                record.polled_states.append(Message(time.monotonic(), time.time(), polled))
            if answer.status == 404:
                self.finish(record, {**state, "status": "failed", "error": "gone (404)"}, "poll")
            elif polled and polled.get("finished"):
                self.finish(record, polled, "poll")
            else:
                await asyncio.sleep(FALLBACK_POLL_S)

    async def download(self, record: JobRecord, cookies: dict[str, str]) -> None:
        assert record.final is not None
        client = self.client_for(record.web, cookies)
        url = (record.final.get("urls") or {}).get("cutout")
        url = url or f"/images/{record.image_id}/download/?format=png"
        first_404: float | None = None
        for _ in range(MAX_DOWNLOAD_ATTEMPTS):
            answer = await self.call(client.request, "GET", url)
            record.download_status = answer.status
            if answer.status == 404 and first_404 is None:
                # Done, yet no file: was "done" sent before its result was committed? Asked
                # again shortly, to tell a late result (reported) from a missing one (lost).
                first_404 = time.monotonic()
            if answer.status == 404 and time.monotonic() - first_404 < LATE_RESULT_WAIT_S:
                await asyncio.sleep(0.25)
                continue
            if answer.status not in (429, 503):
                break
            record.download_retries += 1
            await asyncio.sleep(min(max(answer.retry_after_s or 1.0, 0.2), MAX_RETRY_WAIT_S))
        if first_404 is not None and answer.status == 200:
            record.result_late_s = time.monotonic() - first_404
        record.download_bytes = len(answer.body)
        record.png = answer.status == 200 and answer.body.startswith(PNG_MAGIC)

    def client_for(self, url: str, cookies: dict[str, str]) -> Client:
        client = Client(url, timeout_s=REQUEST_TIMEOUT_S)
        client.cookies = dict(cookies)
        return client

    @staticmethod
    def status_url(record: JobRecord) -> str:
        assert record.initial is not None
        return str(record.initial["urls"]["status"])

    # ---- the killer

    async def kill_worker(self, at_fraction: float) -> None:
        """SIGKILL one db_worker and its engine child once ``at_fraction`` of the photos are
        finished, choosing one that is running a job (its log's last task line says so)."""
        workers = self.topology.workers
        while self.finished < at_fraction * self.args.photos:
            await asyncio.sleep(0.2)
        search_until = time.monotonic() + KILL_SEARCH_S
        victim, task = None, None
        while victim is None and time.monotonic() < search_until:
            for proc in workers:
                task = running_task(proc.log_path)
                if task is not None and proc.process.poll() is None:
                    victim = proc
                    break
            else:
                await asyncio.sleep(0.2)
        if victim is None:
            self.kill = {"error": f"no worker was running a job for {KILL_SEARCH_S:g} s"}
            return
        tree = process_tree(victim.process.pid)
        labels = {pid: process_label(pid) for pid in tree}
        killed_at = time.monotonic()
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        running = [
            r.job_id
            for r in self.records
            if r.final is None
            and r.timeline()
            and r.timeline()[-1].state.get("status") == "running"
        ]
        self.kill = {
            "worker": victim.role,
            "pids": {str(pid): label for pid, label in labels.items()},
            "task": task,
            "at_s": round(killed_at - self.t0, 2),
            "finished_before": self.finished,
            "running_jobs_then": running,
        }
        log(f"killed {victim.role} ({', '.join(labels.values())}) in task {task}")

    def kill_outcome(self) -> dict[str, Any]:
        """Which job the killed worker held: of the jobs running at the kill, the one whose
        socket then stayed silent longest; how it ended."""
        if "at_s" not in self.kill:
            return self.kill
        killed_at = self.t0 + self.kill["at_s"]
        candidates = []
        for record in self.records:
            if record.job_id not in self.kill["running_jobs_then"]:
                continue
            after = [m.at for m in record.timeline() if m.at > killed_at]
            silence = (after[0] if after else time.monotonic()) - killed_at
            candidates.append((silence, record))
        if not candidates:
            return self.kill
        silence, record = max(candidates, key=lambda item: item[0])
        outcome, reason = classify(record)
        seen = record.timeline()
        restarted = any(
            b.state.get("percent", 0) < a.state.get("percent", 0)
            or (a.state.get("status") == "running" and b.state.get("status") == "queued")
            for a, b in zip(seen, seen[1:], strict=False)
        )
        return {
            **self.kill,
            "job": record.job_id,
            "silent_after_kill_s": round(silence, 1),
            "outcome": outcome,
            "reason": reason,
            "time_to_result_s": _round(record.time_to_result),
            "restart_seen": restarted,
        }

    # ---- the whole run

    async def run(self, photos: list[tuple[str, bytes]]) -> bool:
        """True when everything finished before the deadline."""
        loop = asyncio.get_running_loop()
        loop.set_default_executor(self.executor)
        self.t0 = time.monotonic()
        users = [
            asyncio.create_task(self.user(i, share))
            for i, share in enumerate(shares(photos, self.args.users))
        ]
        killer = None
        if self.args.kill_worker and self.topology.workers:
            killer = asyncio.create_task(self.kill_worker(self.args.kill_at))
        in_time = True
        try:
            async with asyncio.timeout(max(0.0, self.left())):
                await asyncio.gather(*users)
                while self.tasks:
                    await asyncio.gather(*list(self.tasks))
        except TimeoutError:
            in_time = False
            log("deadline reached: stopping the clients")
        finally:
            pending = [t for t in [*users, *self.tasks, killer] if t is not None and not t.done()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if killer is not None and killer.done() and not killer.cancelled():
                if killer.exception() is not None:
                    self.kill = {"error": f"the killer failed: {killer.exception()!r}"}
            self.executor.shutdown(wait=False, cancel_futures=True)
        return in_time


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


def roles_of(topology: Topology) -> list[Proc]:
    return [*topology.webs, *topology.workers]


# --------------------------------------------------------------------------- report


def _seconds(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:.{digits}f}"


def _bytes(value: int) -> str:
    return f"{value / GB:.2f} GB" if value >= GB else f"{value / MB:.0f} MB"


def _table(rows: list[Sequence[str]]) -> list[str]:
    widths = [max(len(row[i]) for row in rows) for i in range(len(rows[0]))]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)).rstrip() for row in rows
    ]
    lines.insert(1, "-" * max(len(line) for line in lines))
    return lines


def render_report(results: dict[str, Any]) -> str:
    head = [
        f"bench.loadtest {results['started']}  repo {results['repo']} @ {results['commit']}",
        f"{results['cpus']} CPUs, {results['memory_total_bytes'] / GB:.1f} GB RAM; "
        f"{results['options']['users']} users, {results['options']['photos']} photos, "
        f"deadline {results['options']['deadline']:g} s per topology"
        + (", kill a worker" if results["options"]["kill_worker"] else ""),
        "",
    ]
    rows: list[Sequence[str]] = [
        (
            "topology",
            "done/failed/lost",
            "refused",
            "retries",
            "time to result p50/p95",
            "ws latency p95",
            "images/min",
            "load 1m start→end",
        )
    ]
    details: list[str] = []
    for record in results["topologies"]:
        name = record["topology"] + (" +kill" if record.get("kill") else "")
        load = f"{record['loadavg_start'][0]:.2f}→{record['loadavg_end'][0]:.2f}"
        s = record.get("summary")
        if s is None:
            rows.append((name, "error", "", "", "", "", "", load))
            details += ["", f"{name}: {record.get('error', 'no result')}"]
            continue
        latency = s["socket_latency_p95_s"]
        rows.append(
            (
                name,
                f"{s['completed']}/{s['failed']}/{s['lost']}",
                str(s["refused"]),
                f"{s['upload_retries']} up, {s['download_retries']} down",
                f"{_seconds(s['time_to_result_p50_s'])} / {_seconds(s['time_to_result_p95_s'])} s",
                "—"
                if latency is None
                else f"{latency * 1000:.1f} ms ({s['socket_latency_method']})",
                _seconds(s["images_per_minute"]),
                load,
            )
        )
        details += [
            "",
            f"{name}: {record['elapsed_s']:.0f} s in all, servers ready after "
            f"{record.get('servers_ready_s', 0):.0f} s, load span {_seconds(s['span_s'])} s; "
            f"running → result p50/p95 {_seconds(s.get('run_time_p50_s'))} / "
            f"{_seconds(s.get('run_time_p95_s'))} s"
            + ("" if record.get("in_time", True) else ", DEADLINE REACHED"),
        ]
        details.append(
            f"  sockets: {s['socket_messages']} messages; finished seen via "
            + ", ".join(f"{k} {v}" for k, v in sorted(s["finished_via"].items()))
            + f"; latency p50 {_seconds(s['socket_latency_p50_s'], 3)} s over "
            f"{s['socket_latency_samples']} events"
            + (
                "; errors: " + ", ".join(f"{k} ×{v}" for k, v in s["socket_errors"].items())
                if s["socket_errors"]
                else ""
            )
        )
        if s["results_late"]:
            details.append(
                f"  {s['results_late']} results answered 404 right after their job's final "
                f"'done' and were there within {s['results_late_max_s']} s (done is "
                "announced before the result is committed)"
            )
        if s["upload_refusals"]:
            details.append(
                "  refusals waited out: "
                + ", ".join(f"{k} ×{v}" for k, v in sorted(s["upload_refusals"].items()))
            )
        for reason, count in sorted(s["reasons"].items()):
            details.append(f"  {count} × {reason}")
        kill = record.get("kill")
        if kill:
            if "error" in kill and "at_s" not in kill:
                details.append(f"  kill: {kill['error']}")
            else:
                details.append(
                    f"  kill: {kill['worker']} ({', '.join(kill['pids'].values())}) at "
                    f"{kill['at_s']} s, after {kill['finished_before']} finished; its job "
                    f"{kill.get('job')}: {kill.get('outcome')}, silent "
                    f"{kill.get('silent_after_kill_s')} s after the kill, result after "
                    f"{kill.get('time_to_result_s')} s"
                    + (", restart seen" if kill.get("restart_seen") else "")
                )
        dead = [role for role, alive in record.get("alive_at_end", {}).items() if not alive]
        if dead:
            details.append(f"  not running at the end: {', '.join(dead)}")
        memory = [("process", "peak RSS", "seen")] + [
            (f"{m['role']} {m['process']}", _bytes(m["peak_bytes"]), str(m["processes_seen"]))
            for m in record.get("memory", [])
        ]
        details += ["  peak memory per process:"] + ["    " + line for line in _table(memory)]
    return "\n".join(head + _table(rows) + details) + "\n"


# --------------------------------------------------------------------------- main


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
    parser.add_argument(
        "--out",
        type=Path,
        default=HARNESS_ROOT / "bench" / "results",
        help="where the results and server logs go (default bench/results)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every server process (repeatable)",
    )
    args = parser.parse_args(argv)
    if args.users < 1 or args.photos < 1:
        parser.error("--users and --photos must be at least 1")
    if not 0 < args.kill_at < 1:
        parser.error("--kill-at is a fraction between 0 and 1")
    try:
        args.server_env = dict(item.split("=", 1) for item in args.server_env)
    except ValueError:
        parser.error("--server-env takes NAME=VALUE")
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
    model_dir = Path(os.getenv("BGREMOVER_MODEL_DIR") or shared_root() / "models")
    if not any(model_dir.glob("*.pth")):
        raise SystemExit(f"no weights (*.pth) in {model_dir}: set BGREMOVER_SHARED")
    total = memory_total_bytes()
    stamp, log_dir = open_run(args.out, "loadtest")
    results: dict[str, Any] = {
        "started": datetime.datetime.now().isoformat(timespec="seconds"),
        "repo": str(repo),
        "commit": git_commit(repo),
        "cpus": os.cpu_count(),
        "memory_total_bytes": total,
        "model_dir": str(model_dir),
        "options": {
            k: v for k, v in vars(args).items() if k not in ("out", "topologies", "server_env")
        },
        "server_env": args.server_env,
        "topologies": [],
    }
    with tempfile.TemporaryDirectory(prefix="loadtest-static-") as static:
        # The memory cap of bench.stress's servers does not apply here: RoleSampler only reads.
        config = ServerConfig(repo, sys.executable, model_dir, Path(static), log_dir, 0, {})
        log(f"preparing {repo} ({results['commit']}): collectstatic")
        prepare(config)
        for name in args.topologies:
            log(f"{name}: starting")
            results["topologies"].append(run_topology(name, config, args))
    write_results(args.out / f"loadtest-{stamp}", results, render_report(results), log_dir)
    return 0


if __name__ == "__main__":
    sys.exit(main())
