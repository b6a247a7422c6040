"""The django-tasks entry point: run the engine over one job's image and store the result.

Runs wherever a worker claims the task: a thread inside the web server (embedded default)
or a ``manage.py db_worker`` process. The engine work itself runs in that thread's engine
process (editor.engine_process), which is killed past the job's time or memory limit.
"""

from __future__ import annotations

import logging
import shutil
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from django.conf import settings
from django.db import connection, transaction
from django_tasks import task

from bgremover.engine.errors import EngineError, WeightsError
from bgremover.engine.isolation import WorkerDied, WorkOutOfMemory, WorkTimedOut
from bgremover.engine.products import RENDER_SHARE, make_products
from editor.edits import refresh_edited
from editor.engine_process import engine_worker, product_options
from editor.heavy import heavy_operation
from editor.models import Job, JobGone
from editor.progress import JobTimedOut, ProgressReporter, time_limit_message
from editor.results import discard_unfinished, finish_with_result, store_files
from editor.weights_advice import explained

logger = logging.getLogger(__name__)

UNEXPECTED_FAILURE = (
    "Something went wrong on our side while processing this image. Please try again; "
    "if it keeps failing, the image may be unusual in a way we do not handle yet."
)
WEIGHTS_UNAVAILABLE = (
    "This server cannot remove backgrounds right now: its model weights are missing or "
    "damaged. Please try again later."
)
WORKER_DIED = (
    "Processing stopped unexpectedly (the engine process ended). Please try again; if it "
    "keeps failing, try a smaller image or turn matting off."
)


def memory_limit_message(limit_mb: int) -> str:
    return (
        f"Processing this image needed more memory than the {limit_mb / 1024:g} GB a job may "
        "use, and was stopped. Try a smaller image, or turn matting off."
    )


@task()
def process_job(job_id: str) -> str:
    """Process one queued job; returns its final status ("gone" when it was deleted or
    ended elsewhere while it ran)."""
    job = Job.objects.select_related("image").filter(pk=job_id).first()
    if job is None:
        return "gone"
    if job.finished:
        return job.status
    # The job stays queued while every heavy-operation slot of this process is busy.
    with heavy_operation(None):
        return _run(job)


def _run(job: Job) -> str:
    reporter = ProgressReporter(job, time_limit_s=settings.JOB_TIME_LIMIT_S)
    out_dir = tempfile.mkdtemp(prefix="bgremover-job-")
    result = None
    try:
        reporter.start()
        with heartbeat(reporter):
            with job.image.original.open("rb") as original:
                source = original.read()
            products = engine_worker().call(
                make_products,
                source,
                product_options(job.matting),
                out_dir,
                progress=reporter,
                time_limit_s=settings.JOB_TIME_LIMIT_S or None,
            )
            reporter("saving", RENDER_SHARE[1])
            result = store_files(job, products)
            finish_with_result(reporter, result)
    except JobGone:
        logger.info("job %s was deleted or ended elsewhere while it ran", job.pk)
        discard_unfinished(job, result)
        return "gone"
    except (WorkTimedOut, JobTimedOut):
        return _fail(reporter, result, time_limit_message(settings.JOB_TIME_LIMIT_S))
    except WorkOutOfMemory:
        return _fail(reporter, result, memory_limit_message(settings.JOB_MEMORY_LIMIT_MB))
    except WorkerDied:
        return _fail(reporter, result, WORKER_DIED)
    except WeightsError as exc:
        # The server's fault, not the image's: how to mend it (and the paths that names) goes
        # to the operator's log, not to whoever uploaded.
        logger.error("job %s: %s", job.pk, explained(exc))
        return _fail(reporter, result, WEIGHTS_UNAVAILABLE)
    except EngineError as exc:
        return _fail(reporter, result, str(exc))
    except Exception:
        if not Job.objects.filter(pk=job.pk).exists():
            # Deleted while it ran, e.g. the result's row lost its job: not an error.
            logger.info("job %s was deleted while it ran", job.pk)
            discard_unfinished(job, result)
            return "gone"
        logger.exception("job %s failed unexpectedly", job.pk)
        _fail(reporter, result, UNEXPECTED_FAILURE)
        raise
    finally:
        shutil.rmtree(out_dir, ignore_errors=True)
    # Once the result is in (the job stays done whatever happens here): the owner's
    # touch-ups carry over to a re-run's result.
    refresh_edited(job.image, result)
    return job.status


@contextmanager
def heartbeat(reporter: ProgressReporter) -> Iterator[None]:
    """While the block runs, a thread writes the job's heartbeat every
    JOB_HEARTBEAT_INTERVAL_S: a job whose heartbeat goes stale (its worker was killed) is
    started again by the recovery sweep (editor.retention)."""
    stop = threading.Event()

    def beat() -> None:
        try:
            while not stop.wait(settings.JOB_HEARTBEAT_INTERVAL_S):
                try:
                    reporter.beat()
                except JobGone:
                    return  # ended or taken over: the work itself finds out at its next write
                except Exception:
                    logger.exception("heartbeat of job %s failed", reporter.job.pk)
        finally:
            connection.close()  # this thread's own database connection

    thread = threading.Thread(target=beat, name=f"heartbeat-{reporter.job.pk}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _fail(reporter: ProgressReporter, result: object, reason: str) -> str:
    discard_unfinished(reporter.job, result)
    try:
        reporter.fail(reason)
    except JobGone:
        return "gone"
    return reporter.job.status


# A job started again after its worker died goes ahead of the queue: it has waited already.
RESUMED_PRIORITY = 10


def enqueue_job(job: Job, priority: int = 0) -> None:
    """Queue ``job`` once the surrounding transaction commits (so the worker finds its row);
    higher ``priority`` runs first."""

    def send() -> None:
        result = process_job.using(priority=priority).enqueue(str(job.id))
        Job.objects.filter(pk=job.pk).update(task_id=str(result.id))

    transaction.on_commit(send)
