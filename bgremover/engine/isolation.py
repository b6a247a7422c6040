"""Run engine work in a child process that can be stopped: past a time limit or a memory limit
the child is killed, and the caller gets an exception instead of a thread stuck in a decode.

One ``IsolatedWorker`` owns one child at a time. The child is a fresh interpreter (spawn: a
fork would copy torch's threads and locks half-held) that may run an initializer once (load
the model) and then serves calls until it is closed, killed, or has served ``max_calls`` (a
fresh one then starts, so nothing a long run of jobs leaks can pile up). Progress the work
reports in the child travels back over the pipe and is handed to the caller's callback in the
calling thread; an exception from that callback (e.g. the job was deleted) kills the child and
propagates. Memory is watched from the parent: the child's resident set is read from /proc
every ``WATCH_INTERVAL_S``, since an address-space limit cannot tell PyTorch's and numba's
large reservations from real use.
"""

from __future__ import annotations

import atexit
import multiprocessing
import os
import signal
import time
import weakref
from collections.abc import Callable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import Any

from bgremover.engine.errors import EngineError

Progress = Callable[[str, float], None]

# Seconds between looks at the child's memory and liveness while it works.
WATCH_INTERVAL_S = 0.05
# Seconds a child gets to exit on its own once its pipe is closed, before it is killed.
EXIT_GRACE_S = 2.0


class IsolationError(EngineError):
    """The child process stopped before finishing the work (see the subclasses)."""


class WorkTimedOut(IsolationError):
    """The work ran past its time limit; the child was killed."""


class WorkOutOfMemory(IsolationError):
    """The child's memory passed the limit; the child was killed."""


class WorkerDied(IsolationError):
    """The child exited or was killed by something else (e.g. the kernel's OOM killer)."""


def resident_bytes(pid: int) -> int | None:
    """The resident set size of process ``pid`` in bytes, or None when it cannot be read."""
    try:
        with open(f"/proc/{pid}/statm", "rb") as statm:
            return int(statm.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return None


class IsolatedWorker:
    """Calls functions in a child process: ``worker.call(func, *args, progress=…)``.

    ``func`` must be importable by name (a module-level function) and accept a keyword
    ``progress``; its arguments and result travel pickled. Not thread-safe: one worker per
    thread."""

    def __init__(
        self,
        *,
        memory_limit_bytes: int | None = None,
        max_calls: int = 200,
        initializer: Callable[..., None] | None = None,
        initargs: tuple[Any, ...] = (),
        name: str = "bgremover-engine",
    ) -> None:
        self.memory_limit_bytes = memory_limit_bytes or None
        self.max_calls = max_calls
        self.initializer = initializer
        self.initargs = initargs
        self.name = name
        self._context = multiprocessing.get_context("spawn")
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._calls = 0
        _workers.add(self)

    @property
    def pid(self) -> int | None:
        return self._process.pid if self._process is not None else None

    def start(self) -> None:
        """Start the child now (it loads whatever the initializer loads meanwhile)."""
        if self._process is not None and self._process.is_alive():
            return
        self._discard()
        parent_end, child_end = self._context.Pipe()
        process = self._context.Process(
            target=_serve,
            args=(child_end, self.initializer, self.initargs),
            daemon=True,
            name=self.name,
        )
        process.start()
        child_end.close()  # the child's end lives in the child only: it sees EOF when we go
        self._process, self._connection, self._calls = process, parent_end, 0

    def call(
        self,
        func: Callable[..., Any],
        *args: Any,
        progress: Progress | None = None,
        time_limit_s: float | None = None,
    ) -> Any:
        """Run ``func(*args, progress=…)`` in the child and return its result; the child's
        exceptions are raised here. Raises WorkTimedOut, WorkOutOfMemory or WorkerDied when
        the child is stopped, and whatever ``progress`` raises (the child is killed then)."""
        if self._calls >= self.max_calls:
            self.close()
        self.start()
        assert self._connection is not None and self._process is not None
        deadline = time.monotonic() + time_limit_s if time_limit_s else None
        self._calls += 1
        try:
            self._connection.send((func, args))
            while True:
                message = self._next_message(deadline)
                if message[0] != "progress":
                    break
                if progress is not None:
                    progress(message[1], message[2])
        except BaseException:
            # Stopped, or the caller's callback gave up on the work: the child is in an
            # unknown state or busy with work nobody wants, so it goes.
            self.kill()
            raise
        if message[0] == "error":
            raise message[1]  # the work's own exception; the child is fine
        return message[1]

    def _next_message(self, deadline: float | None) -> tuple[Any, ...]:
        assert self._connection is not None and self._process is not None
        while True:
            wait = WATCH_INTERVAL_S
            if deadline is not None:
                wait = max(0.0, min(wait, deadline - time.monotonic()))
            try:
                if self._connection.poll(wait):
                    return self._connection.recv()
            except (EOFError, OSError):
                raise self._died() from None
            if not self._process.is_alive():
                raise self._died()
            if self.memory_limit_bytes is not None:
                used = resident_bytes(self._process.pid or 0)
                if used is not None and used > self.memory_limit_bytes:
                    raise WorkOutOfMemory(
                        f"used {used / 1e9:.2f} GB, over the {self.memory_limit_bytes / 1e9:.2f}"
                        " GB limit"
                    )
            if deadline is not None and time.monotonic() >= deadline:
                raise WorkTimedOut("ran past its time limit")

    def _died(self) -> WorkerDied:
        assert self._process is not None
        self._process.join(EXIT_GRACE_S)
        return WorkerDied(f"the engine process stopped (exit code {self._process.exitcode})")

    def kill(self) -> None:
        """End the child at once; the next call starts a fresh one."""
        if self._process is not None and self._process.is_alive():
            self._process.kill()
            self._process.join(EXIT_GRACE_S)
        self._discard()

    def close(self) -> None:
        """Let the child exit (it does when its pipe closes); killed if it lingers."""
        if self._connection is not None:
            self._connection.close()
            self._connection = None
        if self._process is not None:
            self._process.join(EXIT_GRACE_S)
        self.kill()

    def _discard(self) -> None:
        if self._connection is not None:
            self._connection.close()
        if self._process is not None and self._process.exitcode is not None:
            self._process.close()
        self._process, self._connection = None, None


_workers: weakref.WeakSet[IsolatedWorker] = weakref.WeakSet()


@atexit.register
def _close_all() -> None:
    """Let every child go before multiprocessing's own exit handler (registered earlier, so
    run later) joins them: a child ignores SIGTERM and leaves only when its pipe closes."""
    for worker in list(_workers):
        worker.close()


def _serve(
    connection: Connection, initializer: Callable[..., None] | None, initargs: tuple[Any, ...]
) -> None:
    """The child's loop: run each call, streaming progress, until the parent closes the pipe."""

    def report(stage: str, fraction: float) -> None:
        connection.send(("progress", stage, fraction))

    # The parent decides when this process ends (it exits when the pipe closes): a Ctrl+C or
    # a service manager's SIGTERM to the whole group must let the parent finish its job first.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)

    if initializer is not None:
        try:
            initializer(*initargs)
        except Exception:
            # The first call reports the real problem (e.g. weights missing) with its message.
            pass
    while True:
        try:
            func, args = connection.recv()
        except (EOFError, OSError):
            # The parent is done or gone; nothing to tear down that the OS won't.
            os._exit(0)
        try:
            reply: tuple[Any, ...] = ("ok", func(*args, progress=report))
        except Exception as exc:
            reply = ("error", exc)
        try:
            connection.send(reply)
        except (EOFError, OSError):
            os._exit(0)
        except Exception as exc:  # a result or exception that does not pickle
            connection.send(("error", RuntimeError(f"{type(exc).__name__}: {exc}")))
