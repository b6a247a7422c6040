"""Jobs whose worker died: found by their stale heartbeat, started again by a live worker.

A running job's worker writes ``Job.heartbeat_at`` every settings.JOB_HEARTBEAT_INTERVAL_S
(editor.tasks.heartbeat). When it has been silent for settings.JOB_HEARTBEAT_TIMEOUT_S — the
worker was killed, its machine went down, the embedded server was restarted mid-job — the job
goes back to the queue as a new run (the dead run's token no longer writes anything) and a new
task is enqueued, up to settings.JOB_MAX_ATTEMPTS starts in all; after that it fails with a
reason. The django-tasks record the dead worker had claimed is marked failed, so nothing shows
it as running for ever. Runs from the periodic maintenance thread of every server process and
from ``manage.py purge_expired``.
"""

from __future__ import annotations

import logging
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from django.conf import settings
from django.db import transaction
from django.db.models import Q
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from editor.models import Job, JobGone
from editor.progress import job_state, publish
from editor.tasks import RESUMED_PRIORITY, enqueue_job

logger = logging.getLogger(__name__)


def gave_up_message(attempts: int) -> str:
    return (
        f"Processing stopped {attempts} times: the worker running it stopped each time (it was "
        "killed, or the server restarted). Please try again; if it keeps happening, try a "
        "smaller image or turn matting off."
    )


@dataclass
class Recovery:
    requeued: list[uuid.UUID] = field(default_factory=list)
    failed: list[uuid.UUID] = field(default_factory=list)


def stalled_jobs(now: datetime | None = None) -> list[Job]:
    """Running jobs whose heartbeat is older than settings.JOB_HEARTBEAT_TIMEOUT_S."""
    timeout_s = settings.JOB_HEARTBEAT_TIMEOUT_S
    if timeout_s <= 0:
        return []
    cutoff = (now or timezone.now()) - timedelta(seconds=timeout_s)
    silent = Q(heartbeat_at__lt=cutoff) | Q(heartbeat_at__isnull=True, started_at__lt=cutoff)
    return list(Job.objects.filter(silent, status=Job.Status.RUNNING).select_related("image"))


def recover_stalled_jobs(now: datetime | None = None, dry_run: bool = False) -> Recovery:
    """Requeue (or, past the attempts, fail) every stalled job; returns what it did (with
    ``dry_run``, what it would do)."""
    now = now or timezone.now()
    done = Recovery()
    for job in stalled_jobs(now):
        again = job.attempts < settings.JOB_MAX_ATTEMPTS
        if dry_run:
            (done.requeued if again else done.failed).append(job.id)
            continue
        dead_task = job.task_id
        try:
            with transaction.atomic():
                if again:
                    job.requeue()
                    enqueue_job(job, priority=RESUMED_PRIORITY)
                else:
                    job.fail(gave_up_message(job.attempts))
                if dead_task:
                    DBTaskResult.objects.filter(
                        pk=dead_task, status=TaskResultStatus.RUNNING
                    ).update(status=TaskResultStatus.FAILED, finished_at=now)
        except JobGone:
            continue  # it finished, or was ended or taken over, since we looked
        publish(job_state(job))
        (done.requeued if again else done.failed).append(job.id)
        logger.warning(
            "job %s: its worker went silent; %s",
            job.id,
            f"started again (attempt {job.attempts + 1})" if again else "failed",
        )
    return done
