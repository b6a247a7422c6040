"""Operators' actions (editor.operator_actions), what the admin's actions call: re-queue, fail
and purge."""

from __future__ import annotations

from pathlib import Path

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django_tasks_db.models import DBTaskResult

from editor import operator_actions
from editor.models import Image, Job
from editor.operations import failure_reason
from tests.web.factories import make_image, make_job


@pytest.mark.django_db
def test_requeue_puts_a_failed_job_back_in_the_queue_and_enqueues_it(
    django_capture_on_commit_callbacks: object,
) -> None:
    job = make_job("a", status=Job.Status.FAILED, error="boom", attempts=1)
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        assert operator_actions.requeue(job)
    job.refresh_from_db()
    assert (job.status, job.stage, job.error) == (Job.Status.QUEUED, "queued", "")
    task = DBTaskResult.objects.get(pk=job.task_id)
    assert task.args_kwargs["args"] == [str(job.id)]
    assert task.task_path == "editor.tasks.process_job"


@pytest.mark.django_db
def test_requeue_leaves_a_finished_job_alone() -> None:
    job = make_job("a", status=Job.Status.DONE)
    assert not operator_actions.requeue(job)
    job.refresh_from_db()
    assert job.status == Job.Status.DONE
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db
def test_fail_ends_a_queued_job_with_the_operators_reason() -> None:
    job = make_job("a")
    assert operator_actions.fail(job)
    job.refresh_from_db()
    assert job.status == Job.Status.FAILED
    assert failure_reason(job.error) == "operator"
    assert not operator_actions.fail(job)  # already finished


@pytest.mark.django_db
def test_purge_deletes_the_image_its_jobs_and_its_files(web_settings: Path) -> None:
    image = make_image("a")
    job = Job.objects.create(image=image, status=Job.Status.DONE)
    default_storage.save(image.original.name, ContentFile(b"original"))
    default_storage.save(f"images/{image.id}/{job.id}/cutout.png", ContentFile(b"cutout"))
    keep = make_image("b")
    default_storage.save(keep.original.name, ContentFile(b"other"))
    operator_actions.purge(image)
    assert list(Image.objects.all()) == [keep]
    assert not Job.objects.filter(pk=job.pk).exists()
    assert not (web_settings / "images" / str(image.id)).exists()
    assert (web_settings / keep.original.name).is_file()
