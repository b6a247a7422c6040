"""Deletes that race with other requests and with jobs: nothing deleted comes back, nothing
answers 500, and no file is left behind. Also: no GET deletes, the heavy-operation slots
answer 503 when full, and a job over its memory limit fails and the worker goes on."""

from __future__ import annotations

import io
import json
import threading
from collections.abc import Callable
from pathlib import Path

import pytest
from django.test import Client
from PIL import Image as PILImage

from editor import views
from editor.edits import refresh_edited
from editor.heavy import heavy_operation
from editor.models import Image, Job, Result
from editor.tasks import memory_limit_message, process_job
from tests.web.client import named_file, stored_files

pytestmark = pytest.mark.django_db


def _png(size: tuple[int, int] = (64, 48)) -> bytes:
    out = io.BytesIO()
    PILImage.new("RGB", size, (0, 200, 0)).save(out, "PNG")
    return out.getvalue()


@pytest.fixture
def deleted_right_after_lookup(monkeypatch: pytest.MonkeyPatch) -> None:
    """The view finds the image, then its owner deletes it (another tab) before the view goes
    on: the worst moment for a stale object."""
    real = views.owned_image

    def owned_then_deleted(request: object, image_id: object) -> Image:
        image = real(request, image_id)  # type: ignore[arg-type]
        views.delete_image(Image.objects.get(pk=image.pk))
        return image

    monkeypatch.setattr(views, "owned_image", owned_then_deleted)


def test_a_background_saved_while_the_image_is_deleted_does_not_bring_it_back(
    client: Client, uploaded: Image, web_settings: Path, deleted_right_after_lookup: None
) -> None:
    response = client.post(
        f"/images/{uploaded.id}/background/", {"file": named_file("bg.png", _png())}
    )
    assert response.status_code == 404
    assert not Image.objects.filter(pk=uploaded.pk).exists()
    assert stored_files(web_settings) == []


def test_run_again_on_a_deleted_image_answers_404(
    client: Client, uploaded: Image, web_settings: Path, deleted_right_after_lookup: None
) -> None:
    response = client.post(f"/images/{uploaded.id}/rerun/", {"matting": "off"})
    assert response.status_code == 404
    assert not Image.objects.exists() and not Job.objects.exists()
    assert stored_files(web_settings) == []


def test_a_background_replaces_the_previous_file(
    client: Client, uploaded: Image, web_settings: Path
) -> None:
    for _ in range(2):
        answer = client.post(
            f"/images/{uploaded.id}/background/", {"file": named_file("bg.png", _png())}
        )
        assert answer.status_code == 201
    image = Image.objects.get(pk=uploaded.pk)
    backgrounds = [name for name in stored_files(web_settings) if "background" in name]
    assert backgrounds == [image.background.name]
    assert image.background_bytes == len(_png())


@pytest.mark.django_db(transaction=True)
def test_a_job_finishing_on_a_deleted_image_stores_nothing(
    client: Client,
    uploaded: Image,
    real_weights: None,
    web_settings: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The image goes after the engine finished but before the result row is written."""
    from editor import tasks

    real_store = tasks.store_files

    def store_then_delete(job: Job, products: object) -> Result:
        result = real_store(job, products)  # type: ignore[arg-type]
        client.post(f"/images/{uploaded.id}/delete/")
        return result

    monkeypatch.setattr(tasks, "store_files", store_then_delete)
    job = uploaded.latest_job()
    assert job is not None
    assert process_job.call(str(job.id)) == "gone"
    assert not Image.objects.exists() and not Result.objects.exists()
    assert not (web_settings / "images").exists() or stored_files(web_settings) == []
    assert list((web_settings / "images").glob("*")) == []


def test_when_every_heavy_slot_is_taken_uploads_and_downloads_get_503(
    client: Client, processed: Image, photo: bytes, settings: object
) -> None:
    settings.HEAVY_OPERATIONS = 1  # type: ignore[attr-defined]
    settings.HEAVY_WAIT_S = 0  # type: ignore[attr-defined]
    taken, release = threading.Event(), threading.Event()

    def hold() -> None:
        with heavy_operation(None):
            taken.set()
            release.wait(30)

    holder = threading.Thread(target=hold)
    holder.start()
    try:
        assert taken.wait(10)
        answers = [
            client.post("/upload/", {"file": named_file("a.jpg", photo)}),
            client.get(f"/images/{processed.id}/download/", {"format": "png"}),
            client.post(
                f"/images/{processed.id}/background/", {"file": named_file("b.png", _png())}
            ),
        ]
    finally:
        release.set()
        holder.join()
    for answer in answers:
        assert answer.status_code == 503
        assert int(answer["Retry-After"]) > 0
        assert "busy" in answer.json()["error"]
    assert Image.objects.count() == 1
    # Free again: the same requests go through.
    assert client.get(f"/images/{processed.id}/download/", {"format": "png"}).status_code == 200


@pytest.mark.django_db(transaction=True)
def test_a_job_over_its_memory_limit_fails_and_the_next_one_runs(
    client: Client, uploaded: Image, photo: bytes, real_weights: None, settings: object
) -> None:
    settings.JOB_MEMORY_LIMIT_MB = 64  # type: ignore[attr-defined]  (less than PyTorch alone)
    job = uploaded.latest_job()
    assert job is not None
    assert process_job.call(str(job.id)) == "failed"
    failed = Job.objects.get(pk=job.pk)
    assert failed.error == memory_limit_message(64)
    assert not Result.objects.exists()

    settings.JOB_MEMORY_LIMIT_MB = 2560  # type: ignore[attr-defined]
    again = client.post(f"/images/{uploaded.id}/rerun/", {"matting": "off"}).json()["job"]
    assert process_job.call(again) == "done"


@pytest.fixture
def deleted_while_answering(processed: Image, monkeypatch: pytest.MonkeyPatch) -> None:
    """The view has found the image's result, then the image is deleted (another tab, or the
    purge) before its files are read."""

    def deleting_first(real: Callable[..., object]) -> Callable[..., object]:
        def call(*args: object) -> object:
            views.delete_image(Image.objects.get(pk=processed.pk))
            return real(*args)

        return call

    monkeypatch.setattr(views, "render_download", deleting_first(views.render_download))
    monkeypatch.setattr(views, "_serve", deleting_first(views._serve))


@pytest.mark.parametrize("path", ["/images/{image}/download/", "/jobs/{job}/files/cutout"])
def test_files_read_after_their_image_was_deleted_answer_404(
    client: Client, processed: Image, web_settings: Path, deleted_while_answering: None, path: str
) -> None:
    job = processed.jobs.get()
    assert client.get(path.format(image=processed.id, job=job.id)).status_code == 404
    assert not Image.objects.exists() and stored_files(web_settings) == []


def test_edits_carried_over_to_an_image_deleted_meanwhile_leave_nothing(
    client: Client, processed: Image, web_settings: Path
) -> None:
    edits = [{"tool": "erase", "radius": 12, "points": [[30, 30]]}]
    body = json.dumps({"version": 0, "edits": edits})
    saved = client.post(f"/images/{processed.id}/edits/", body, content_type="application/json")
    assert saved.status_code == 200, saved.content
    image = Image.objects.get(pk=processed.pk)
    result = image.latest_result()
    image.edits_version += 1  # as after a re-run: the result's edited copies are behind
    views.delete_image(Image.objects.get(pk=image.pk))  # then the owner deletes it
    refresh_edited(image, result)  # the end of the re-run's job
    assert stored_files(web_settings) == []
