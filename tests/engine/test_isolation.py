"""The engine's child process: results and progress come back, and past a time or memory
limit, or when the child dies, the caller gets an exception instead of a stuck thread."""

from __future__ import annotations

import os
import signal
import threading
import time
from pathlib import Path

import pytest

from bgremover.engine.errors import ImageDecodeError
from bgremover.engine.isolation import (
    IsolatedWorker,
    WorkerDied,
    WorkOutOfMemory,
    WorkTimedOut,
    resident_bytes,
)
from tests.engine import isolation_work as work


@pytest.fixture
def worker():
    isolated = IsolatedWorker(max_calls=3)
    yield isolated
    isolated.kill()


def _gone(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return True
    # A zombie until reaped counts as gone too.
    with open(f"/proc/{pid}/stat") as stat:
        return stat.read().split(")")[-1].split()[0] == "Z"


def test_result_and_progress_come_back_in_order(worker: IsolatedWorker) -> None:
    seen: list[tuple[str, float]] = []
    total, child = worker.call(work.add, 2, 3, progress=lambda s, f: seen.append((s, f)))
    assert total == 5
    assert child != os.getpid() and child == worker.pid
    assert seen == [("segmenting", 0.25), ("matting", 0.75)]


def test_the_works_own_error_comes_back_and_the_child_stays(worker: IsolatedWorker) -> None:
    first = worker.call(work.pid)
    with pytest.raises(ImageDecodeError, match="truncated"):
        worker.call(work.refuse)
    assert worker.call(work.pid) == first


def test_past_the_time_limit_the_child_is_killed_and_the_next_call_gets_a_fresh_one(
    worker: IsolatedWorker,
) -> None:
    first = worker.call(work.pid)
    started = time.monotonic()
    with pytest.raises(WorkTimedOut):
        worker.call(work.sleep_forever, time_limit_s=1.0)
    assert time.monotonic() - started < 10
    assert _gone(first)
    assert worker.call(work.pid) != first


def test_past_the_memory_limit_the_child_is_killed(worker: IsolatedWorker) -> None:
    worker.memory_limit_bytes = 400 * 1024 * 1024
    first = worker.call(work.pid)
    with pytest.raises(WorkOutOfMemory, match="over the 0.42 GB limit"):
        worker.call(work.hog_memory, 800, time_limit_s=60)
    assert _gone(first)


def test_a_child_killed_by_something_else_is_reported(worker: IsolatedWorker) -> None:
    child = worker.call(work.pid)
    threading.Timer(1.0, os.kill, (child, signal.SIGKILL)).start()
    with pytest.raises(WorkerDied, match="exit code -9"):
        worker.call(work.sleep_forever, time_limit_s=60)
    assert worker.call(work.pid) != child


def test_an_exception_from_the_progress_callback_ends_the_work(worker: IsolatedWorker) -> None:
    class Gone(Exception):
        pass

    def progress(stage: str, fraction: float) -> None:
        raise Gone

    child = worker.call(work.pid)
    with pytest.raises(Gone):
        worker.call(work.report_then_sleep, progress=progress, time_limit_s=60)
    assert _gone(child)


def test_a_child_is_replaced_after_max_calls(worker: IsolatedWorker) -> None:
    pids = [worker.call(work.pid) for _ in range(4)]
    assert pids[0] == pids[1] == pids[2] != pids[3]


def test_resident_bytes_reads_a_live_process_and_none_for_a_missing_one() -> None:
    mine = resident_bytes(os.getpid())
    assert mine is not None and mine > 10 * 1024 * 1024
    assert resident_bytes(2**22 + 12345) is None


def test_a_process_with_a_child_exits_promptly_and_takes_the_child_along(tmp_path) -> None:
    """The child ignores SIGTERM (a service manager's stop must let the parent finish its
    job), so it must leave when the parent exits, not keep the parent's exit waiting."""
    import subprocess
    import sys

    script = tmp_path / "parent.py"
    script.write_text(
        "from bgremover.engine.isolation import IsolatedWorker\n"
        "from tests.engine import isolation_work as work\n"
        "if __name__ == '__main__':\n"
        "    print(IsolatedWorker().call(work.pid), flush=True)\n"
    )
    repo = Path(__file__).resolve().parents[2]
    started = time.monotonic()
    done = subprocess.run(
        [sys.executable, str(script)],
        cwd=repo,
        env={**os.environ, "PYTHONPATH": str(repo)},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert time.monotonic() - started < 60
    child = int(done.stdout.split()[-1])
    deadline = time.monotonic() + 10
    while not _gone(child):
        assert time.monotonic() < deadline, "the child outlived its parent"
        time.sleep(0.1)
