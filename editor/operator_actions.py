"""What an operator may do to jobs and images (the admin's actions, editor.admin), through
the same paths the app itself uses: the Job's transitions, editor.tasks.enqueue_job, and
editor.results.delete_image. Each tells the job's watchers (the owner's open page) at once.

Kept apart from editor.admin so that it imports nothing from django.contrib.admin, which is
only installed with settings.ADMIN_ENABLED.
"""

from __future__ import annotations

from django.db import transaction

from editor.models import Image, Job, JobGone
from editor.progress import job_state, publish
from editor.results import delete_image
from editor.tasks import enqueue_job

# Shown to the owner of a job an operator failed (editor.operations counts it as "operator").
OPERATOR_FAILED = "Processing was stopped by the server's operator. Please try again later."


def requeue(job: Job) -> bool:
    """Put a failed (or running) job back in the queue as a new run, and enqueue its task
    once that is committed; False, changing nothing, for a job queued or done."""
    try:
        with transaction.atomic():
            job.requeue()
            enqueue_job(job)
    except JobGone:
        return False
    publish(job_state(job))
    return True


def fail(job: Job, reason: str = OPERATOR_FAILED) -> bool:
    """End a queued or running job as failed with ``reason`` (a running one's worker stops at
    its next write); False, changing nothing, for a job already finished."""
    try:
        job.fail(reason)
    except JobGone:
        return False
    publish(job_state(job))
    return True


def purge(image: Image) -> None:
    """Delete an image with its jobs, results and every stored file (a running job stops)."""
    delete_image(image)
