"""Jobs that go wrong end as failed with a reason, and the worker goes on: a job that raises,
one past its time limit, one stuck (or left running by a crash) and swept by retention."""

from __future__ import annotations

import threading
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import default_storage
from django.test import Client
from django.utils import timezone
from django_tasks import DEFAULT_TASK_BACKEND_ALIAS, DEFAULT_TASK_QUEUE_NAME, TaskResultStatus
from django_tasks_db.management.commands.db_worker import Worker
from django_tasks_db.models import DBTaskResult

from editor.models import Image, Job, JobGone, Result
from editor.progress import ProgressReporter, time_limit_message
from editor.retention import fail_overdue_jobs, overdue_message
from editor.tasks import UNEXPECTED_FAILURE, WEIGHTS_UNAVAILABLE, process_job
from tests.web.client import stored_files, upload, visit
from tests.web.factories import make_job

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("real_weights")]


@pytest.mark.django_db(transaction=True)
def test_a_job_that_raises_fails_with_a_reason_and_the_worker_takes_the_next(
    client: Client, photo: bytes
) -> None:
    visit(client)
    broken, fine = (
        Image.objects.get(pk=upload(client, name, photo).json()["image"])
        for name in ("broken.jpg", "fine.jpg")
    )
    default_storage.delete(broken.original.name)  # the job cannot open its file: it raises
    worker = Worker(
        queue_names=[DEFAULT_TASK_QUEUE_NAME],
        interval=0,
        batch=True,  # run what is queued, then return
        backend_name=DEFAULT_TASK_BACKEND_ALIAS,
        startup_delay=False,
        max_tasks=None,
        worker_id="test-worker",
        excluded_queue_names=[],
    )
    worker.run()

    failed, done = broken.latest_job(), fine.latest_job()
    assert (failed.status, failed.error) == (Job.Status.FAILED, UNEXPECTED_FAILURE)
    assert failed.finished_at is not None
    assert done.status == Job.Status.DONE and Result.objects.filter(job=done).exists()
    statuses = dict(DBTaskResult.objects.values_list("args_kwargs__args__0", "status"))
    assert statuses == {
        str(failed.id): TaskResultStatus.FAILED,
        str(done.id): TaskResultStatus.SUCCESSFUL,
    }
    assert client.get(f"/jobs/{failed.id}/status/").json()["error"] == UNEXPECTED_FAILURE


def test_a_job_past_its_time_limit_fails_with_a_reason_and_leaves_no_result(
    client: Client, uploaded: Image, settings: object, web_settings: Path
) -> None:
    settings.JOB_TIME_LIMIT_S = 0.001  # type: ignore[attr-defined]
    job = uploaded.latest_job()
    assert job is not None
    assert process_job.call(str(job.id)) == "failed"
    state = client.get(f"/jobs/{job.id}/status/").json()
    assert state["status"] == "failed" and state["finished"] is True
    assert state["error"] == time_limit_message(0.001)
    assert "took longer than the 0.001 seconds limit" in state["error"]
    assert not Result.objects.exists()
    assert stored_files(web_settings) == [uploaded.original.name]


def test_a_job_on_damaged_weights_fails_without_showing_the_server_its_paths(
    client: Client,
    uploaded: Image,
    settings: object,
    tmp_path: Path,
    caplog: pytest.LogCaptureFixture,
) -> None:
    models = tmp_path / "models"
    models.mkdir()
    (models / "u2netp.pth").write_bytes(b"not a weights file")
    settings.MODEL_DIR = str(models)  # type: ignore[attr-defined]
    settings.DEFAULT_MODEL = "u2netp"  # type: ignore[attr-defined]
    job = uploaded.latest_job()
    assert job is not None
    assert process_job.call(str(job.id)) == "failed"
    state = client.get(f"/jobs/{job.id}/status/").json()
    assert state["error"] == WEIGHTS_UNAVAILABLE
    assert str(tmp_path) not in state["error"]
    # The operator's log has what is wrong, where, and what to do.
    logged = " ".join(record.getMessage() for record in caplog.records)
    assert str(models / "u2netp.pth") in logged
    assert "fetch_models u2netp" in logged
    assert not Result.objects.exists()


def test_the_sweep_fails_jobs_stuck_past_the_limit_and_ignores_their_late_writes(
    settings: object,
) -> None:
    settings.JOB_TIME_LIMIT_S = 600  # type: ignore[attr-defined]
    now = timezone.now()
    stuck = make_job("owner", status=Job.Status.RUNNING, started_at=now - timedelta(hours=2))
    busy = make_job("owner", status=Job.Status.RUNNING, started_at=now - timedelta(minutes=5))
    queued = make_job("owner")
    assert fail_overdue_jobs() == [stuck.id]
    swept = Job.objects.get(pk=stuck.pk)
    assert swept.status == Job.Status.FAILED and swept.error == overdue_message(600)
    assert "ran past the 10 minutes limit" in swept.error
    assert Job.objects.get(pk=busy.pk).status == Job.Status.RUNNING
    assert Job.objects.get(pk=queued.pk).status == Job.Status.QUEUED

    # The stuck worker wakes up: its progress, success or failure must not undo the sweep.
    late = ProgressReporter(stuck)
    for write in (lambda: late("matting", 0.9), late.succeed, lambda: late.fail("other")):
        with pytest.raises(JobGone):
            write()
    assert Job.objects.get(pk=stuck.pk).error == overdue_message(600)

    # No limit: nothing is swept.
    settings.JOB_TIME_LIMIT_S = 0  # type: ignore[attr-defined]
    Job.objects.filter(pk=busy.pk).update(started_at=now - timedelta(days=1))
    assert fail_overdue_jobs() == []


@pytest.mark.django_db(transaction=True)
def test_a_job_swept_while_it_runs_stops_and_stores_nothing(
    uploaded: Image, settings: object, web_settings: Path
) -> None:
    settings.JOB_TIME_LIMIT_S = 600  # type: ignore[attr-defined]
    job = uploaded.latest_job()
    assert job is not None
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(process_job.call(str(job.id))))
    worker.start()
    deadline = time.monotonic() + 120
    while Job.objects.get(pk=job.pk).status == Job.Status.QUEUED:
        assert time.monotonic() < deadline, "the job never started"
        time.sleep(0.05)
    # As if it had been running for an hour (a hung stage, or a worker that died).
    Job.objects.filter(pk=job.pk).update(started_at=timezone.now() - timedelta(hours=1))
    assert fail_overdue_jobs() == [job.id]
    worker.join(timeout=300)
    assert outcome == ["gone"]
    assert Job.objects.get(pk=job.pk).error == overdue_message(600)
    assert not Result.objects.exists()
    assert stored_files(web_settings) == [uploaded.original.name]
