"""Job state changes go through one set of transitions, and a job whose worker died is
started again (up to JOB_MAX_ATTEMPTS) by the recovery sweep; the dead run can never write
again. The same with real processes killed mid-job: tests/browser/test_crash.py."""

from __future__ import annotations

from datetime import timedelta

import pytest
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from editor.models import Job, JobGone
from editor.progress import ProgressReporter
from editor.recovery import gave_up_message, recover_stalled_jobs
from editor.retention import run_maintenance
from editor.tasks import heartbeat, process_job
from tests.web.factories import make_job

pytestmark = pytest.mark.django_db


def test_only_the_listed_moves_are_allowed() -> None:
    job = make_job("owner")
    with pytest.raises(JobGone):
        job.transition("succeed", "token")  # queued → done skips running
    job.start("run-1")
    assert (job.status, job.attempts, job.run_token) == ("running", 1, "run-1")
    with pytest.raises(JobGone):
        job.start("run-2")  # already running: a second worker cannot take it
    job.succeed("run-1", {"segmenting": 0.5})
    for move in (lambda: job.fail("x"), job.requeue, lambda: job.record_progress("run-1", "a", 1)):
        with pytest.raises(JobGone):
            move()
    assert Job.objects.get(pk=job.pk).status == "done"
    job.lose_result("gone missing")
    assert Job.objects.get(pk=job.pk).status == "failed"


def test_a_run_whose_token_was_replaced_cannot_write() -> None:
    job = make_job("owner")
    old = ProgressReporter(job)
    old.start()
    Job.objects.get(pk=job.pk).requeue()
    new = ProgressReporter(Job.objects.get(pk=job.pk))
    new.start()
    for late in (lambda: old("matting", 0.9), old.beat, old.succeed, lambda: old.fail("x")):
        with pytest.raises(JobGone):
            late()
    new("segmenting", 0.5)
    new.succeed()
    stored = Job.objects.get(pk=job.pk)
    assert (stored.status, stored.attempts) == ("done", 2)
    assert set(stored.stage_seconds) >= {"decoding", "segmenting"}


def _running_since(minutes: int, attempts: int = 1) -> Job:
    job = make_job("owner")
    ProgressReporter(job).start()
    long_ago = timezone.now() - timedelta(minutes=minutes)
    Job.objects.filter(pk=job.pk).update(heartbeat_at=long_ago, attempts=attempts)
    return Job.objects.get(pk=job.pk)


def test_a_silent_job_is_queued_again_with_a_new_task(
    settings: object, django_capture_on_commit_callbacks: object
) -> None:
    settings.JOB_HEARTBEAT_TIMEOUT_S = 60  # type: ignore[attr-defined]
    settings.JOB_MAX_ATTEMPTS = 3  # type: ignore[attr-defined]
    stalled = _running_since(minutes=5)
    dead_task = DBTaskResult.objects.create(
        task_path="editor.tasks.process_job",
        args_kwargs={"args": [str(stalled.id)], "kwargs": {}},
        backend_name="default",
        run_after=timezone.now(),
        status=TaskResultStatus.RUNNING,
    )
    Job.objects.filter(pk=stalled.pk).update(task_id=str(dead_task.pk))
    alive = _running_since(minutes=0)
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        recovery = recover_stalled_jobs()
    assert recovery.requeued == [stalled.id] and recovery.failed == []
    again = Job.objects.get(pk=stalled.pk)
    assert (again.status, again.stage, again.run_token, again.attempts) == (
        "queued",
        "queued",
        "",
        1,
    )
    assert again.task_id and again.task_id != str(dead_task.pk)
    # It has waited already: it goes ahead of jobs queued normally.
    assert DBTaskResult.objects.get(pk=again.task_id).priority > 0
    assert DBTaskResult.objects.get(pk=dead_task.pk).status == TaskResultStatus.FAILED
    assert Job.objects.get(pk=alive.pk).status == "running"


def test_a_job_that_used_up_its_attempts_fails_with_a_reason(settings: object) -> None:
    settings.JOB_MAX_ATTEMPTS = 2  # type: ignore[attr-defined]
    stalled = _running_since(minutes=5, attempts=2)
    report = run_maintenance()
    assert report.recovery.failed == [stalled.id]
    failed = Job.objects.get(pk=stalled.pk)
    assert failed.status == "failed" and failed.error == gave_up_message(2)
    assert "stopped 2 times" in failed.error


def test_dry_run_changes_nothing(settings: object) -> None:
    stalled = _running_since(minutes=5)
    assert run_maintenance(dry_run=True).recovery.requeued == [stalled.id]
    assert Job.objects.get(pk=stalled.pk).status == "running"


@pytest.mark.django_db(transaction=True)
def test_the_heartbeat_thread_keeps_a_running_job_fresh(settings: object) -> None:
    settings.JOB_HEARTBEAT_INTERVAL_S = 0.05  # type: ignore[attr-defined]
    job = make_job("owner")
    reporter = ProgressReporter(job)
    reporter.start()
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    with heartbeat(reporter):
        deadline = timezone.now() + timedelta(seconds=20)
        while Job.objects.get(pk=job.pk).heartbeat_at < timezone.now() - timedelta(minutes=1):
            assert timezone.now() < deadline, "no heartbeat was written"
    assert recover_stalled_jobs().requeued == []


@pytest.mark.django_db(transaction=True)
def test_a_requeued_job_runs_to_the_end(
    uploaded: object, real_weights: None, settings: object
) -> None:
    job = uploaded.latest_job()  # type: ignore[attr-defined]
    dead = ProgressReporter(job)
    dead.start()  # a worker started it, then died
    Job.objects.filter(pk=job.pk).update(heartbeat_at=timezone.now() - timedelta(hours=1))
    assert recover_stalled_jobs().requeued == [job.id]
    assert process_job.call(str(job.id)) == "done"
    finished = Job.objects.get(pk=job.pk)
    assert finished.attempts == 2 and hasattr(finished, "result")
