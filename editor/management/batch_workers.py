"""``removebg --jobs N``: the batch's files shared out to N worker processes.

Processes, not threads: decoding, refining, matting and encoding are mostly single-threaded
Python and numpy between the network's passes, so N processes keep N cores busy where one
process with N torch threads would leave all but one idle for that part of each file. The
cores are split between the workers (each gets ``cores // N`` torch, OpenCV and numba threads)
instead of N × cores threads fighting over them.

Each worker is handed one file at a time, so the command always knows which file a worker
holds: a worker that dies (killed, out of memory, a crash in native code) fails that file
alone, with the reason, and a new worker takes the rest. Results are written by the workers
themselves (atomically), so nothing already written is lost whatever happens to another.

This module imports neither Django nor the engine: a worker loads the engine itself, after
its thread counts are set, and never the Django settings."""

from __future__ import annotations

import multiprocessing
import os
import signal
from collections import deque
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from multiprocessing.connection import Connection, wait
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from bgremover.engine.pipeline import RemovalOptions, RenderOptions
    from editor.management.removebg_files import Outcome, Task

# Torch threads per worker for the default number of workers (cores // this). Measured on 1 MP
# photos (docs/decisions.md, "removebg at volume"): one single-threaded worker per core gives the
# most images per minute.
THREADS_PER_WORKER = 1
# A worker told to stop that is still there after this many seconds is killed.
STOP_GRACE_S = 5.0


def available_cores() -> int:
    """The CPUs this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


def default_jobs() -> int:
    """--jobs when none is given: as many workers as the cores hold at THREADS_PER_WORKER."""
    return max(1, available_cores() // THREADS_PER_WORKER)


def threads_per_worker(workers: int, configured: int | None = None) -> int:
    """Each worker's share of the cores, or ``configured`` (the BGREMOVER_TORCH_THREADS
    setting) when set."""
    if configured is not None:
        return configured
    return max(1, available_cores() // workers)


def crash_reason(exitcode: int | None) -> str:
    """Why a worker holding a file ended, in words."""
    if exitcode is not None and exitcode < 0:
        try:
            name = signal.Signals(-exitcode).name
        except ValueError:
            name = f"signal {-exitcode}"
        hint = " (out of memory?)" if -exitcode == signal.SIGKILL else ""
        return f"its worker process was killed by {name}{hint}; the other files go on"
    return f"its worker process ended (exit status {exitcode}); the other files go on"


@dataclass
class _Worker:
    process: BaseProcess
    connection: Connection
    task: Task | None = None


class WorkerPool:
    """``size`` worker processes running process_file with these options."""

    def __init__(self, size: int, removal: RemovalOptions, rendering: RenderOptions) -> None:
        self.size = size
        self.threads = threads_per_worker(size, removal.threads)
        # The engine takes its torch threads from the options (it reads no environment).
        self.removal = replace(removal, threads=self.threads)
        self.rendering = rendering
        # A fresh interpreter: a fork would copy torch's threads and locks half-held.
        self._context = multiprocessing.get_context("spawn")

    def _start(self) -> _Worker:
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(child_end, self.removal, self.rendering, self.threads),
            daemon=True,
            name="bgremover-removebg",
        )
        process.start()
        child_end.close()  # the worker's end lives in the worker only: we see EOF if it dies
        return _Worker(process, parent_end)

    def run(self, tasks: Iterable[Task]) -> Iterator[tuple[Task, Outcome]]:
        """Each task with its outcome, in the order they finish. Closing the iterator early
        (the caller stopping on a fatal outcome, Ctrl+C) stops every worker."""
        from editor.management.removebg_files import Outcome

        pending = deque(tasks)
        workers = [self._start() for _ in range(min(self.size, len(pending)))]
        try:
            while True:
                for worker in workers:
                    if worker.task is None and pending:
                        worker.task = pending.popleft()
                        worker.connection.send(worker.task)
                busy = [worker for worker in workers if worker.task is not None]
                if not busy:
                    return
                waitables = [w.connection for w in busy] + [w.process.sentinel for w in busy]
                ready = set(wait(waitables))
                for worker in busy:
                    if worker.connection not in ready and worker.process.sentinel not in ready:
                        continue
                    task = worker.task
                    assert task is not None
                    try:
                        outcome = worker.connection.recv()
                    except (EOFError, OSError):  # it died holding the task
                        worker.process.join(STOP_GRACE_S)
                        outcome = Outcome(ok=False, message=crash_reason(worker.process.exitcode))
                        worker.connection.close()
                        workers.remove(worker)
                        if pending:
                            workers.append(self._start())
                    else:
                        worker.task = None
                    yield task, outcome
        finally:
            _stop(workers)


def _stop(workers: list[_Worker]) -> None:
    """Ask idle workers to go, kill busy ones, and wait for all of them."""
    for worker in workers:
        if worker.task is None:
            try:
                worker.connection.send(None)
            except OSError:
                pass
        else:
            worker.process.terminate()
    for worker in workers:
        worker.process.join(STOP_GRACE_S)
        if worker.process.is_alive():
            worker.process.kill()
            worker.process.join()
        worker.connection.close()


def _serve(
    connection: Connection, removal: RemovalOptions, rendering: RenderOptions, threads: int
) -> None:
    """A worker's loop: process each task it is sent until it gets None."""
    # Ctrl+C reaches every process of the terminal's group: the command stops the workers.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Before numba is imported: it reads this once (torch gets ``removal.threads``).
    os.environ["NUMBA_NUM_THREADS"] = str(threads)
    import cv2

    from editor.management.removebg_files import process_file

    cv2.setNumThreads(threads)
    while True:
        try:
            task = connection.recv()
        except EOFError:  # the command is gone
            break
        if task is None:
            break
        connection.send(process_file(task, removal, rendering))
    connection.close()
