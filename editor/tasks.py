"""The django-tasks entry point: run the engine over one job's image and store the result.

Runs wherever a worker claims the task: a thread inside the web server (embedded default)
or a ``manage.py db_worker`` process.
"""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import transaction
from django_tasks import task

from bgremover.engine import pipeline
from bgremover.engine.errors import EngineError
from editor.models import Job
from editor.progress import JobGone, JobTimedOut, ProgressReporter
from editor.results import delete_result, store_result

logger = logging.getLogger(__name__)

# How much of the progress bar each part of a job fills.
REMOVAL_SHARE = (0.0, 0.86)
RENDER_SHARE = (0.86, 0.96)

UNEXPECTED_FAILURE = (
    "Something went wrong on our side while processing this image. Please try again; "
    "if it keeps failing, the image may be unusual in a way we do not handle yet."
)


def removal_options(job: Job | None = None) -> pipeline.RemovalOptions:
    """The engine options for ``job`` (None: the server's defaults, e.g. for warming up)."""
    return pipeline.RemovalOptions(
        model=settings.DEFAULT_MODEL,
        model_dir=settings.MODEL_DIR,
        matting=job.matting if job is not None else "auto",
        max_pixels=settings.MAX_UPLOAD_PIXELS,
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
    reporter = ProgressReporter(job, time_limit_s=settings.JOB_TIME_LIMIT_S)
    try:
        reporter.start()
        with job.image.original.open("rb") as original:
            source = original.read()
        cutout = pipeline.remove_background(
            source, removal_options(job), progress=reporter.span(*REMOVAL_SHARE)
        )
        cutout_png = pipeline.render(
            cutout, pipeline.RenderOptions(), progress=reporter.span(*RENDER_SHARE)
        )
        reporter("saving", RENDER_SHARE[1])
        result = store_result(job, cutout, cutout_png)
        try:
            reporter.succeed()
        except JobGone:
            delete_result(result)
            raise
    except JobGone:
        logger.info("job %s was deleted or ended elsewhere while it ran", job_id)
        return "gone"
    except (EngineError, JobTimedOut) as exc:
        return _fail(reporter, str(exc))
    except Exception as exc:
        if not Job.objects.filter(pk=job.pk).exists():
            # Deleted while it ran, e.g. the result's row lost its job: not an error.
            logger.info("job %s was deleted while it ran", job_id)
            return "gone"
        logger.exception("job %s failed unexpectedly", job_id)
        _fail(reporter, UNEXPECTED_FAILURE)
        raise exc
    return job.status


def _fail(reporter: ProgressReporter, reason: str) -> str:
    try:
        reporter.fail(reason)
    except JobGone:
        return "gone"
    return reporter.job.status


def enqueue_job(job: Job) -> None:
    """Queue ``job`` once the surrounding transaction commits (so the worker finds its row)."""

    def send() -> None:
        result = process_job.enqueue(str(job.id))
        Job.objects.filter(pk=job.pk).update(task_id=str(result.id))

    transaction.on_commit(send)
