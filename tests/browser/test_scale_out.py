"""The scale-out configuration for real: PostgreSQL and Redis (throwaway servers from
tests/services.py), two Daphne web processes with no in-process workers, and
``manage.py db_worker`` processes, all sharing one media folder, all on loopback.

A job uploaded through one web process is run by a db_worker, and its progress reaches a
websocket open on the *other* web process: the only way there is the Redis channel layer.
Twenty jobs uploaded at once are each run exactly once by two workers. The HTTP API works
the same way across the processes.
"""

from __future__ import annotations

import importlib.metadata
import io
import re
import subprocess
import time
import tomllib
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import psycopg
import pytest
from PIL import Image, ImageDraw
from playwright.sync_api import Browser

from tests.api.conftest import create_key
from tests.api.http import post_form, request
from tests.browser.conftest import (
    ARTIFACTS,
    MANAGE,
    new_page,
    process,
    running_server,
    server_environment,
)
from tests.browser.pages import FOX, photo, upload_with_picker, wait_done
from tests.browser.test_server import Visitor
from tests.browser.websocket_client import WebSocket
from tests.conftest import REPO_ROOT

JOB_TIMEOUT_S = 180
WORKER_START_TIMEOUT_S = 60
MANY_JOBS = 20
# Longer than channels-redis's 5 s blocking pop (settings.REDIS_SOCKET_TIMEOUT_S).
QUIET_BEFORE_WORK_S = 8


@dataclass
class Cluster:
    env: dict[str, str]  # every process's environment (DATABASE_URL, REDIS_URL, DATA_DIR…)
    web: tuple[str, str]  # base URLs of web processes A and B
    database_url: str


@pytest.fixture(scope="module")
def cluster(
    tmp_path_factory: pytest.TempPathFactory,
    u2netp_weights: Path,
    postgres_url: str,
    redis_url: str,
) -> Iterator[Cluster]:
    """Two Daphne processes on one PostgreSQL, one Redis and one data folder (the media
    folder every process shares); no job runs until a test starts db_workers."""
    env = server_environment(tmp_path_factory.mktemp("scale-out"), u2netp_weights.parent, 0)
    env.update(DATABASE_URL=postgres_url, REDIS_URL=redis_url, PURGE_INTERVAL_S="2")
    with (
        running_server(env, "scale-out-web-a.log") as web_a,
        running_server(env, "scale-out-web-b.log") as web_b,
    ):
        yield Cluster(env, (web_a, web_b), postgres_url)


@contextmanager
def db_workers(env: dict[str, str], *worker_ids: str) -> Iterator[list[Path]]:
    """``manage.py db_worker`` processes, one per id, polling every 0.2 s; yields their log
    files once each has started its loop."""
    with ExitStack() as stack:
        logs = []
        for worker_id in worker_ids:
            name = f"scale-out-{worker_id}.log"
            command = [
                *MANAGE,
                "db_worker",
                "--no-reload",
                "--no-startup-delay",
                "--interval",
                "0.2",
                "--worker-id",
                worker_id,
            ]
            stack.enter_context(process(command, env, name))
            logs.append(ARTIFACTS / name)
        deadline = time.monotonic() + WORKER_START_TIMEOUT_S
        for log in logs:
            while "Starting worker" not in log.read_text(errors="replace"):
                assert time.monotonic() < deadline, f"{log.name}: the worker did not start"
                time.sleep(0.2)
        yield logs


def websocket_url(base_url: str, path: str) -> str:
    parts = urlsplit(base_url)
    return urlunsplit(("ws", parts.netloc, path, "", ""))


def small_photo(index: int) -> bytes:
    """A small distinct picture: a coloured disc on a plain background."""
    picture = Image.new("RGB", (160, 120), (40 + 9 * index, 120, 200 - 7 * index))
    ImageDraw.Draw(picture).ellipse((40, 20, 120, 100), fill=(230, 180 - 5 * index, 60))
    out = io.BytesIO()
    picture.save(out, "PNG")
    return out.getvalue()


# ---- (a) the declared dependencies, and migrate on PostgreSQL


def _pins() -> dict[str, str]:
    """The postgres and redis extras' pins from pyproject.toml: distribution → version."""
    extras = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"][
        "optional-dependencies"
    ]
    pins = {}
    for requirement in extras["postgres"] + extras["redis"]:
        name, _, version = requirement.partition("==")
        pins[re.sub(r"\[.*\]", "", name).strip()] = version.strip()
    return pins


def test_migrate_works_on_postgresql_with_the_declared_dependencies(
    postgres_url: str, tmp_path: Path
) -> None:
    pins = _pins()
    assert set(pins) == {"psycopg", "channels-redis", "redis"}
    for name, version in pins.items():
        assert importlib.metadata.version(name) == version, f"{name} is not the pinned {version}"

    # A database of its own, so this holds whatever the other tests did first.
    fresh = f"migrate_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(postgres_url, autocommit=True) as admin:
        admin.execute(f'CREATE DATABASE "{fresh}"')
    fresh_url = postgres_url.rsplit("/", 1)[0] + f"/{fresh}"
    env = {**server_environment(tmp_path, tmp_path, 0), "DATABASE_URL": fresh_url}

    migrate = subprocess.run(
        [*MANAGE, "migrate", "--noinput"], env=env, capture_output=True, text=True, timeout=300
    )
    assert migrate.returncode == 0, migrate.stdout + migrate.stderr
    check = subprocess.run(
        [*MANAGE, "migrate", "--check"], env=env, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr

    with psycopg.connect(fresh_url) as connection:
        tables = {
            row[0]
            for row in connection.execute(
                "SELECT table_name FROM information_schema.tables WHERE table_schema = 'public'"
            )
        }
    assert {
        "editor_image",
        "editor_job",
        "editor_result",
        "django_session",
        "django_tasks_database_dbtaskresult",
    } <= tables


# ---- (b) live progress from a db_worker, through Redis, on the other web process


def test_progress_from_a_db_worker_reaches_a_socket_on_the_other_web_process(
    cluster: Cluster, eval_dir: Path
) -> None:
    web_a, web_b = cluster.web
    visitor = Visitor(web_a)
    status, state = visitor.upload(f"{FOX}.jpg", photo(eval_dir, FOX)["buffer"])  # type: ignore[arg-type]
    assert status == 201, state
    cookie = f"sessionid={visitor.cookies['sessionid']}"
    url = websocket_url(web_b, state["urls"]["socket"])  # type: ignore[index]

    # The socket is open on B (with B's own origin and the session A gave) before any worker
    # runs, so every event after the first comes live, from a worker, through Redis.
    with WebSocket(url, origin=web_b, cookie=cookie, timeout_s=JOB_TIMEOUT_S) as socket:
        received = socket.json_messages()
        first = next(received)
        assert (first["job"], first["status"]) == (state["job"], "queued")
        # Quiet for longer than channels-redis's blocking pop (5 s), which redis-py 8's
        # default socket timeout used to turn into a crash of the consumer (close 1011).
        time.sleep(QUIET_BEFORE_WORK_S)
        with db_workers(cluster.env, "progress-1", "progress-2"):
            states = [first, *received]  # until the server closes the socket
    assert socket.close_code == 1000  # closed by B after the final state

    assert all(each["job"] == state["job"] for each in states)
    working = [each["stage"] for each in states if each["status"] == "running"]
    assert working and set(working) - {"queued", "done"}, states
    assert len(states) >= 3, [each["stage"] for each in states]
    final = states[-1]
    assert (final["status"], final["stage"], final["finished"]) == ("done", "done", True)
    percents = [each["percent"] for each in states]
    assert percents == sorted(percents), percents
    # A, which served the upload, agrees; and serves the result written by the worker.
    assert visitor.wait_done(state)["status"] == "done"
    code, _, body = visitor.request("GET", final["urls"]["cutout"])
    assert code == 200 and body.startswith(b"\x89PNG")


# ---- (c) many jobs at once, two workers: each job runs exactly once


def test_jobs_uploaded_at_once_each_run_exactly_once_by_two_workers(cluster: Cluster) -> None:
    worker_ids = ("once-1", "once-2")
    with db_workers(cluster.env, *worker_ids) as logs:
        # Twenty browsers, half on each web process, each uploading at the same moment.
        visitors = [Visitor(cluster.web[index % 2]) for index in range(MANY_JOBS)]
        with ThreadPoolExecutor(MANY_JOBS) as pool:
            answers = list(
                pool.map(
                    lambda index: visitors[index].upload(f"small-{index}.png", small_photo(index)),
                    range(MANY_JOBS),
                )
            )
        assert [status for status, _ in answers] == [201] * MANY_JOBS, answers
        # Each watched through the web process it did not upload to.
        watchers = [Visitor(cluster.web[(index + 1) % 2]) for index in range(MANY_JOBS)]
        for watcher, visitor in zip(watchers, visitors, strict=True):
            watcher.cookies = visitor.cookies
        finished = [
            watcher.wait_done(state) for watcher, (_, state) in zip(watchers, answers, strict=True)
        ]
        log_text = "".join(log.read_text(errors="replace") for log in logs)
    assert [state["status"] for state in finished] == ["done"] * MANY_JOBS, finished
    job_ids = [str(state["job"]) for _, state in answers]

    with psycopg.connect(cluster.database_url) as connection:
        results = dict(
            connection.execute(
                "SELECT j.id::text, count(r.id) FROM editor_job j "
                "LEFT JOIN editor_result r ON r.job_id = j.id "
                "WHERE j.id::text = ANY(%s) GROUP BY j.id",
                (job_ids,),
            ).fetchall()
        )
        tasks = connection.execute(
            "SELECT id::text, args_kwargs->'args'->>0, status, worker_ids, return_value "
            "FROM django_tasks_database_dbtaskresult WHERE args_kwargs->'args'->>0 = ANY(%s)",
            (job_ids,),
        ).fetchall()
        columns = {
            row[0]
            for row in connection.execute(
                "SELECT column_name FROM information_schema.columns WHERE table_name = 'editor_job'"
            )
        }
        attempts = (
            dict(
                connection.execute(
                    "SELECT id::text, attempts FROM editor_job WHERE id::text = ANY(%s)",
                    (job_ids,),
                ).fetchall()
            )
            if "attempts" in columns
            else {}
        )

    assert results == {job_id: 1 for job_id in job_ids}  # one Result per job
    # One task per job, claimed once, by one of the two workers, and successful.
    assert sorted(job for _, job, *_ in tasks) == sorted(job_ids)
    for _, job_id, status, claimed_by, returned in tasks:
        assert (status, returned) == ("SUCCESSFUL", "done"), (job_id, status, returned)
        assert len(claimed_by) == 1 and claimed_by[0] in worker_ids, (job_id, claimed_by)
    # Both workers took part (a queue of twenty, polled every 0.2 s by each).
    assert Counter(claimed_by[0] for *_, claimed_by, _ in tasks).keys() == set(worker_ids)
    # And each task was started exactly once across both workers' logs.
    started = Counter(re.findall(r"Task id=(\S+) path=\S+ state=RUNNING", log_text))
    assert {task_id: started[task_id] for task_id, *_ in tasks} == {
        task_id: 1 for task_id, *_ in tasks
    }
    if attempts:  # the Job row's own count of starts, where the schema has it
        assert attempts == {job_id: 1 for job_id in job_ids}


# ---- (d) the same through a real browser


@pytest.mark.browser
def test_a_photo_uploaded_in_the_browser_is_done_by_a_db_worker(
    cluster: Cluster, browser: Browser, eval_dir: Path
) -> None:
    with db_workers(cluster.env, "browser-1", "browser-2"):
        page = new_page(browser, cluster.web[1])
        try:
            upload_with_picker(page, [photo(eval_dir, FOX)])
            wait_done(page, f"{FOX}.jpg")
        finally:
            page.context.close()


# ---- (e) the HTTP API on the scale-out configuration


def test_the_api_is_served_by_any_web_process_and_run_by_db_workers(cluster: Cluster) -> None:
    """remove.bg's call on A waits for a db_worker (woken through Redis); a job submitted to
    the jobs API on A is followed and downloaded on B, with a key made on PostgreSQL."""
    web_a, web_b = cluster.web
    key = create_key(cluster.env, "scale-out")
    headers = {"X-Api-Key": key}
    with db_workers(cluster.env, "api-1"):
        answer = post_form(
            f"{web_a}/api/v1.0/removebg",
            files={"image_file": ("disc.png", small_photo(3))},
            headers=headers,
        )
        assert answer.status == 200, answer.body
        assert answer.body.startswith(b"\x89PNG") and answer.headers["X-Credits-Charged"]
        submitted = post_form(
            f"{web_a}/api/v1/jobs",
            files={"image_file": ("disc.png", small_photo(4))},
            headers=headers,
        )
        assert submitted.status == 202, submitted.body
        job_id = submitted.json()["data"][0]["id"]
        deadline = time.monotonic() + JOB_TIMEOUT_S
        state = request(f"{web_b}/api/v1/jobs/{job_id}", headers=headers).json()["data"]
        while not state["finished"] and time.monotonic() < deadline:
            time.sleep(0.5)
            state = request(f"{web_b}/api/v1/jobs/{job_id}", headers=headers).json()["data"]
        assert state["status"] == "done", state
        result = request(f"{web_b}/api/v1/jobs/{job_id}/result?format=png", headers=headers)
        assert result.status == 200 and result.body.startswith(b"\x89PNG")
