"""The embedded job worker: django-tasks-db's own worker loop, run in background threads
inside the web server process so that ``make run`` needs nothing else.

``manage.py db_worker`` runs the very same loop in separate processes; both claim tasks
through the database, so they can run side by side.
"""

from __future__ import annotations

import asyncio
import logging
import os
import threading
import time
from collections.abc import Awaitable, Callable
from typing import Any

from django.conf import settings
from django.db import close_old_connections
from django_tasks import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME
from django_tasks_db.management.commands.db_worker import Worker

from editor.engine_process import engine_worker
from editor.progress import bind_server_loop
from editor.retention import start_periodic_maintenance

logger = logging.getLogger(__name__)

# Seconds between looks at the queue when it is empty.
POLL_INTERVAL_S = 0.5
# Seconds before a worker thread that crashed (e.g. database not migrated yet) tries again.
RESTART_DELAY_S = 5.0

_workers: list[Worker] = []
_start_lock = threading.Lock()


def _run_forever(worker: Worker) -> None:
    # Start this thread's engine process now: it loads the model while the server is idle,
    # so the first job does not pay for it.
    engine_worker().start()
    while worker.running:
        try:
            worker.run()
        except Exception:
            logger.exception("in-process worker %s stopped; restarting", worker.worker_id)
            close_old_connections()
            time.sleep(RESTART_DELAY_S)


def start_inprocess_workers(count: int | None = None) -> list[Worker]:
    """Start ``count`` (default settings.INPROCESS_WORKERS) worker threads, once per process."""
    count = settings.INPROCESS_WORKERS if count is None else count
    with _start_lock:
        if _workers or count <= 0:
            return list(_workers)
        for index in range(count):
            worker = Worker(
                queue_names=[DEFAULT_TASK_QUEUE_NAME],
                interval=POLL_INTERVAL_S,
                batch=False,
                backend_name=DEFAULT_TASK_BACKEND_ALIAS,
                startup_delay=False,
                max_tasks=None,
                worker_id=f"inprocess-{os.getpid()}-{index}",
                excluded_queue_names=[],
            )
            thread = threading.Thread(
                target=_run_forever, args=(worker,), name=worker.worker_id, daemon=True
            )
            thread.start()
            _workers.append(worker)
        logger.info("started %d in-process job worker(s)", count)
        return list(_workers)


ASGIApp = Callable[[dict[str, Any], Callable[..., Any], Callable[..., Any]], Awaitable[None]]


class EmbeddedWorkers:
    """ASGI wrapper for the embedded default: starts the in-process workers and the periodic
    purge (editor.retention) when the server loads the application, and hands the workers
    the server's event loop on the first connection so their progress events reach
    websockets in this process."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app
        self._loop_bound = False
        start_inprocess_workers()
        # In every server process, with or without in-process workers (db_worker setups).
        start_periodic_maintenance()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if not self._loop_bound:
            bind_server_loop(asyncio.get_running_loop())
            self._loop_bound = True
        await self.app(scope, receive, send)
