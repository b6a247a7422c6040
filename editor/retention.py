"""How long things are kept, and the purge that enforces it.

Every image stores its own ``expires_at`` (set at upload from settings.RETENTION_HOURS).
``purge_expired`` deletes expired images with their jobs, results and every stored file;
``run_maintenance`` adds the sweep of jobs stuck past their time limit and the clean-up of
expired sessions and old task records. Both run from ``manage.py purge_expired`` and from
the periodic thread each server process starts (``start_periodic_maintenance``).

RETENTION_HOURS = 0 keeps nothing longer than needed: an image is deleted
RETENTION_IDLE_MINUTES after the owner's last request (every request from the owner moves the
expiry of all their images forward). No GET deletes anything: a link preview, a prefetch or a
crawler must not be able to destroy what someone is still working on.

Purging is idempotent and safe while a job for the same image runs: rows go first, so the
job's next progress write finds its row gone and the job stops without storing anything.
"""

from __future__ import annotations

import logging
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from importlib import import_module

from django.conf import settings
from django.db import close_old_connections
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from editor.models import Image, Job, JobGone, default_expiry
from editor.progress import describe_duration, job_state, publish
from editor.recovery import Recovery, recover_stalled_jobs
from editor.results import delete_image

logger = logging.getLogger(__name__)

# A running job is swept this long after its time limit: its own check (between stages)
# normally ends it first, with a more precise message.
OVERDUE_GRACE = timedelta(seconds=60)


def ephemeral() -> bool:
    """True when images are kept only while their owner needs them (RETENTION_HOURS = 0)."""
    return settings.RETENTION_HOURS <= 0


def keep_alive(owner: str) -> bool:
    """With RETENTION_HOURS = 0, an owner's request moves their images' expiry forward; says
    whether it moved any (then the owner's session should move along: editor.ownership)."""
    if not ephemeral():
        return False
    target = default_expiry()  # RETENTION_IDLE_MINUTES from now
    # Written at most once a minute per owner, not on every status poll.
    moved = Image.objects.filter(owner=owner, expires_at__lt=target - timedelta(minutes=1)).update(
        expires_at=target
    )
    return moved > 0


@dataclass
class PurgeReport:
    """What one purge or maintenance run did (or, for a dry run, would do)."""

    images: list[uuid.UUID] = field(default_factory=list)
    overdue_jobs: list[uuid.UUID] = field(default_factory=list)
    recovery: Recovery = field(default_factory=Recovery)
    sessions_cleared: bool = False
    task_records: int = 0


def purge_expired(now: datetime | None = None, dry_run: bool = False) -> list[uuid.UUID]:
    """Delete every image whose expiry has passed, with its rows and files; returns their ids
    (with ``dry_run``, the ids that would go, deleting nothing)."""
    now = now or timezone.now()
    expired = list(Image.objects.filter(expires_at__lte=now).order_by("expires_at"))
    if dry_run:
        return [image.id for image in expired]
    # Each only if still expired: its owner may come back while earlier ones are deleted.
    return [image.id for image in expired if delete_image(image, expired_by=now)]


def overdue_message(limit_s: float) -> str:
    return (
        f"Processing stopped: it ran past the {describe_duration(limit_s)} limit, or the "
        "worker running it stopped. Please try again."
    )


def fail_overdue_jobs(now: datetime | None = None, dry_run: bool = False) -> list[uuid.UUID]:
    """End as failed every job still running well past settings.JOB_TIME_LIMIT_S (stuck in
    one stage, or left running by a worker that crashed or was restarted)."""
    limit_s = settings.JOB_TIME_LIMIT_S
    if limit_s <= 0:
        return []
    now = now or timezone.now()
    cutoff = now - timedelta(seconds=limit_s) - OVERDUE_GRACE
    overdue = list(
        Job.objects.filter(status=Job.Status.RUNNING, started_at__lt=cutoff).select_related("image")
    )
    failed = []
    for job in overdue:
        if dry_run:
            failed.append(job.id)
            continue
        try:
            job.fail(overdue_message(limit_s))
        except JobGone:
            continue  # it finished since we looked
        publish(job_state(job))
        failed.append(job.id)
    return failed


def _task_record_cutoff(now: datetime) -> datetime:
    if ephemeral():
        return now - timedelta(minutes=settings.RETENTION_IDLE_MINUTES)
    return now - timedelta(hours=settings.RETENTION_HOURS)


def run_maintenance(now: datetime | None = None, dry_run: bool = False) -> PurgeReport:
    """The whole periodic clean-up: expired images, overdue jobs, jobs whose worker died,
    expired sessions, and records of finished tasks older than the retention period."""
    now = now or timezone.now()
    report = PurgeReport(
        images=purge_expired(now, dry_run),
        overdue_jobs=fail_overdue_jobs(now, dry_run),
        recovery=recover_stalled_jobs(now, dry_run),
    )
    old_tasks = DBTaskResult.objects.finished().filter(finished_at__lt=_task_record_cutoff(now))
    if dry_run:
        report.task_records = old_tasks.count()
    else:
        report.task_records, _ = old_tasks.delete()
        import_module(settings.SESSION_ENGINE).SessionStore.clear_expired()
        report.sessions_cleared = True
    return report


class PeriodicMaintenance(threading.Thread):
    """Runs ``run_maintenance`` now and then every ``interval_s`` seconds until stopped, and
    between those the recovery of stalled jobs every quarter of the heartbeat timeout (so a
    dead worker's job is started again soon after it goes silent)."""

    def __init__(self, interval_s: float) -> None:
        super().__init__(name="retention-maintenance", daemon=True)
        self.interval_s = interval_s
        timeout_s = settings.JOB_HEARTBEAT_TIMEOUT_S
        self.wake_s = min(interval_s, max(1.0, timeout_s / 4)) if timeout_s > 0 else interval_s
        self._stopping = threading.Event()

    def run(self) -> None:
        next_maintenance = 0.0
        while not self._stopping.is_set():
            try:
                if time.monotonic() >= next_maintenance:
                    next_maintenance = time.monotonic() + self.interval_s
                    report = run_maintenance()
                    if report.images or report.overdue_jobs:
                        logger.info(
                            "purged %d expired image(s); failed %d overdue job(s)",
                            len(report.images),
                            len(report.overdue_jobs),
                        )
                else:
                    recover_stalled_jobs()
            except Exception:
                # E.g. the database is not migrated yet: try again next time.
                logger.exception("periodic maintenance failed")
            finally:
                close_old_connections()
            self._stopping.wait(self.wake_s)

    def stop(self) -> None:
        self._stopping.set()


_maintenance: PeriodicMaintenance | None = None
_maintenance_lock = threading.Lock()


def start_periodic_maintenance(interval_s: float | None = None) -> PeriodicMaintenance | None:
    """Start the maintenance thread once per process (interval: settings.PURGE_INTERVAL_S;
    0 starts nothing)."""
    global _maintenance
    interval_s = settings.PURGE_INTERVAL_S if interval_s is None else interval_s
    with _maintenance_lock:
        if _maintenance is None and interval_s > 0:
            _maintenance = PeriodicMaintenance(interval_s)
            _maintenance.start()
            logger.info("periodic purge every %s", describe_duration(interval_s))
        return _maintenance
