"""Signals other apps listen to, so the editor never imports them.

``job_finished`` is sent (with ``job``: the Job, its new state already set) each time a job
ends, done or failed, whoever ended it: its worker, the recovery or overdue sweeps, an
operator. Inside a transaction it is sent before the commit, so receivers that act outside
the database defer that with ``transaction.on_commit``. Receivers' errors are logged and
never reach the code that ended the job (``send_robust``).
"""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from django.dispatch import Signal

if TYPE_CHECKING:
    from editor.models import Job

logger = logging.getLogger(__name__)

job_finished = Signal()


def announce_finished(job: Job) -> None:
    """Send ``job_finished`` for ``job``; a receiver that raises is logged, not re-raised."""
    for receiver, outcome in job_finished.send_robust(sender=type(job), job=job):
        if isinstance(outcome, Exception):
            logger.error(
                "job_finished receiver %r failed for job %s",
                receiver,
                job.pk,
                exc_info=outcome,
            )
