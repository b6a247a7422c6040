"""Crashes with real processes: a db_worker killed with SIGKILL mid-job, the embedded server
killed and restarted mid-job, and a graceful SIGTERM. After each, the job ends done exactly
once, nothing is left "running", and check_storage finds storage and database in agreement."""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image as PILImage

from tests.browser.conftest import MANAGE, process, running_server, server_environment
from tests.browser.test_server import Visitor

JOB_TIMEOUT_S = 240
# Short, so the tests need not wait a minute for a dead worker to be noticed.
CRASH_SETTINGS = {
    "JOB_HEARTBEAT_INTERVAL_S": "1",
    "JOB_HEARTBEAT_TIMEOUT_S": "4",
    "PURGE_INTERVAL_S": "1",
}
WORKER = [*MANAGE, "db_worker", "--no-startup-delay", "--interval", "0.3"]


@pytest.fixture
def big_photo(eval_dir: Path, tmp_path: Path) -> bytes:
    """A 24-megapixel JPEG: its job runs for several seconds, long enough to kill it."""
    source = PILImage.open(eval_dir / "sod" / "images" / "ecssd_0070.jpg").convert("RGB")
    path = tmp_path / "big.jpg"
    source.resize((6000, 4000)).save(path, "JPEG", quality=85)
    return path.read_bytes()


@pytest.fixture
def crash_env(tmp_path: Path, u2netp_weights: Path) -> Iterator[dict[str, str]]:
    env = server_environment(tmp_path / "data", u2netp_weights.parent, workers=0)
    env.update(CRASH_SETTINGS, MAX_UPLOAD_BYTES=str(16 * 1024 * 1024))
    yield env


def _descendants(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found


def _kill_tree(pid: int, sig: signal.Signals = signal.SIGKILL) -> None:
    for victim in [pid, *_descendants(pid)]:
        try:
            os.kill(victim, sig)
        except ProcessLookupError:
            pass


def _job_row(env: dict[str, str], job_id: str) -> dict[str, object]:
    with sqlite3.connect(Path(env["DATA_DIR"]) / "bgremover.sqlite3", timeout=30) as db:
        db.row_factory = sqlite3.Row
        key = uuid.UUID(job_id).hex
        row = db.execute("SELECT * FROM editor_job WHERE id = ?", (key,)).fetchone()
        results = db.execute("SELECT COUNT(*) FROM editor_result WHERE job_id = ?", (key,))
        running_tasks = db.execute(
            "SELECT COUNT(*) FROM django_tasks_database_dbtaskresult WHERE status = 'RUNNING'"
        )
        return {**dict(row), "results": results.fetchone()[0], "tasks": running_tasks.fetchone()[0]}


def _wait_running(visitor: Visitor, state: dict[str, object]) -> None:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while True:
        _, _, body = visitor.request("GET", state["urls"]["status"])  # type: ignore[index]
        current = json.loads(body)
        if current["status"] == "running" and current["stage"] != "decoding":
            return
        assert not current["finished"], f"the job ended before it could be killed: {current}"
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.1)


def _assert_storage_agrees(env: dict[str, str]) -> None:
    check = subprocess.run(
        [*MANAGE, "check_storage"], env=env, capture_output=True, text=True, timeout=120
    )
    assert check.returncode == 0, check.stdout + check.stderr
    assert "Storage and database agree." in check.stdout


def test_a_worker_killed_mid_job_hands_it_to_a_live_worker(
    crash_env: dict[str, str], big_photo: bytes
) -> None:
    with running_server(crash_env, "crash-server.log") as url:
        visitor = Visitor(url)
        with process(WORKER, crash_env, "crash-worker-a.log") as doomed:
            status, state = visitor.upload("big.jpg", big_photo)
            assert status == 201
            _wait_running(visitor, state)
            _kill_tree(doomed.pid)  # the worker and its engine process, mid-job
            doomed.wait(timeout=30)
        with process(WORKER, crash_env, "crash-worker-b.log"):
            final = visitor.wait_done(state)
        assert final["status"] == "done", final
        row = _job_row(crash_env, str(state["job"]))
        assert (row["attempts"], row["results"], row["tasks"]) == (2, 1, 0)
        _assert_storage_agrees(crash_env)


def test_the_embedded_server_restarted_mid_job_resumes_it(
    crash_env: dict[str, str], big_photo: bytes
) -> None:
    crash_env["INPROCESS_WORKERS"] = "1"
    with running_server(crash_env, "crash-embedded-1.log") as url:
        visitor = Visitor(url)
        status, state = visitor.upload("big.jpg", big_photo)
        assert status == 201
        _wait_running(visitor, state)
        server_pid = _server_pid(url)
        _kill_tree(server_pid)
    with running_server(crash_env, "crash-embedded-2.log") as url:
        again = Visitor(url)
        again.cookies.update(visitor.cookies)  # the same browser comes back
        final = again.wait_done(state)
    assert final["status"] == "done", final
    row = _job_row(crash_env, str(state["job"]))
    assert (row["attempts"], row["results"], row["tasks"]) == (2, 1, 0)
    _assert_storage_agrees(crash_env)


def test_sigterm_lets_the_current_job_finish(crash_env: dict[str, str], big_photo: bytes) -> None:
    with running_server(crash_env, "crash-sigterm-server.log") as url:
        visitor = Visitor(url)
        with process(WORKER, crash_env, "crash-sigterm-worker.log") as worker:
            status, state = visitor.upload("big.jpg", big_photo)
            assert status == 201
            _wait_running(visitor, state)
            # As a service manager stops a unit: SIGTERM to every process of it.
            _kill_tree(worker.pid, signal.SIGTERM)
            assert worker.wait(timeout=JOB_TIMEOUT_S) == 0
        row = _job_row(crash_env, str(state["job"]))
        assert (row["status"], row["attempts"], row["results"]) == ("done", 1, 1)
        _assert_storage_agrees(crash_env)


def _server_pid(url: str) -> int:
    """The Daphne process listening on ``url``'s port (found through /proc, no extra tools)."""
    port = int(url.rsplit(":", 1)[1])
    inodes = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        for line in Path(table).read_text().splitlines()[1:]:
            fields = line.split()
            if int(fields[1].rsplit(":", 1)[1], 16) == port and fields[3] == "0A":  # LISTEN
                inodes.add(fields[9])
    for fd in Path("/proc").glob("[0-9]*/fd/*"):
        try:
            if os.readlink(fd).removeprefix("socket:[").removesuffix("]") in inodes:
                return int(fd.parent.parent.name)
        except OSError:
            continue
    raise AssertionError(f"no process listens on port {port}")
