"""The servers of each topology: ``embedded`` (one Daphne, in-process worker, SQLite) and
``scaleout`` (PostgreSQL, Redis, two web processes, two db_workers), with the limits raised
so that ordinary load is not refused."""

from __future__ import annotations

import argparse
import importlib
import math
import re
import subprocess
import tempfile
import time
from collections.abc import Iterable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import unquote, urlsplit

from bench.loopback.servers import (
    Proc,
    ServerConfig,
    limits_off_env,
    settings_names,
    started,
    web_server,
)

WORKER_START_TIMEOUT_S = 60.0
# "Task id=<uuid> path=editor.tasks.process_job state=RUNNING" (django_tasks' own log line).
TASK_LINE = re.compile(r"Task id=(\S+) path=\S+ state=(\w+)")


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
    return {
        "JOB_QUEUE_LIMIT": str(args.photos + args.users),
        "JOB_QUEUE_LIMIT_PER_OWNER": str(max(20, per_user + 5)),
        "WEBSOCKET_MAX_PER_ADDRESS": str(args.photos + args.users),
        "WEBSOCKET_MAX_PER_OWNER": str(max(20, per_user + 5)),
        **limits_off_env(repo),
    }


@dataclass
class Topology:
    """A topology's running processes and the environment overrides it was started with."""

    name: str
    webs: list[Proc]
    workers: list[Proc]
    env: dict[str, str]


def roles_of(topology: Topology) -> list[Proc]:
    return [*topology.webs, *topology.workers]


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
