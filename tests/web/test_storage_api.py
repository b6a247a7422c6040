"""Stored files go through Django's storage API only, so media can live on any storage
(S3 through django-storages, say), not just a local folder every process shares: the whole
cycle — upload, job, previews, downloads with every kind of background, storage check,
delete — runs with Django's InMemoryStorage, which has no paths at all."""

from __future__ import annotations

import logging
from datetime import timedelta
from pathlib import Path

import pytest
from django.core.files.storage import InMemoryStorage, Storage, default_storage, storages
from django.test import Client

from editor.models import Image, Job, Result
from editor.storage_check import check_storage, repair
from editor.tasks import process_job
from tests.web.client import decode, named_file, stored_files, upload, visit

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("real_weights")]


@pytest.fixture
def memory_storage(settings: object) -> Storage:
    """Django's InMemoryStorage as the default storage (what every FileField uses)."""
    settings.STORAGES = {  # type: ignore[attr-defined]
        **settings.STORAGES,  # type: ignore[attr-defined]
        "default": {"BACKEND": "django.core.files.storage.InMemoryStorage"},
    }
    # FileFields hold the lazy default storage, which follows the setting.
    storage = Image._meta.get_field("original").storage
    assert storage is default_storage and isinstance(storages["default"], InMemoryStorage)
    return storage


def _files(storage: Storage, folder: str = "images") -> list[str]:
    try:
        subfolders, files = storage.listdir(folder)
    except FileNotFoundError:
        return []
    found = [f"{folder}/{name}" for name in files]
    for sub in subfolders:
        found += _files(storage, f"{folder}/{sub}")
    return sorted(found)


def test_upload_job_download_and_delete_with_a_storage_that_has_no_paths(
    client: Client,
    photo: bytes,
    memory_storage: Storage,
    web_settings: Path,
    django_capture_on_commit_callbacks: object,
    caplog: pytest.LogCaptureFixture,
) -> None:
    caplog.set_level(logging.WARNING)
    visit(client)
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        answer = upload(client, "dog photo.jpg", photo)
    assert answer.status_code == 201, answer.content
    image = Image.objects.get(pk=answer.json()["image"])
    assert memory_storage.open(image.original.name).read() == photo

    job_id = answer.json()["job"]
    assert process_job.call(job_id) == "done"
    result = Result.objects.get(job_id=job_id)
    assert all(memory_storage.exists(stored.name) for stored in result.files())
    assert result.size_bytes == sum(memory_storage.size(stored.name) for stored in result.files())

    # Previews and the stored files, as the pages fetch them.
    for name in ("thumb-original", "thumb-cutout", "preview-original", "preview-cutout"):
        response = client.get(f"/jobs/{job_id}/files/{name}")
        assert response.status_code == 200, name
        decode(b"".join(response.streaming_content))
    cutout = client.get(f"/jobs/{job_id}/files/cutout")
    assert cutout.status_code == 200 and "attachment" in cutout["Content-Disposition"]
    assert decode(b"".join(cutout.streaming_content)).mode == "RGBA"
    original = client.get(f"/images/{image.id}/files/original")
    assert b"".join(original.streaming_content) == photo

    # Downloads render from the stored cut-out: transparent, blur (reads the original back),
    # and a custom background stored through the same API.
    png = client.get(f"/images/{image.id}/download/", {"format": "png"})
    assert png.status_code == 200 and decode(png.content).size == (image.width, image.height)
    blur = client.get(f"/images/{image.id}/download/", {"background": "blur", "blur": 20})
    assert blur.status_code == 200, blur.content
    background = client.post(
        f"/images/{image.id}/background/", {"file": named_file("backdrop.jpg", photo)}
    )
    assert background.status_code == 201, background.content
    image.refresh_from_db()
    assert memory_storage.exists(image.background.name)
    custom = client.get(f"/images/{image.id}/download/", {"background": "custom", "format": "jpeg"})
    assert custom.status_code == 200, custom.content
    assert decode(custom.content).mode == "RGB"

    # The storage check agrees with the rows, and its repair copes with a storage without
    # folders to remove.
    report = check_storage(memory_storage, min_age=timedelta(0))
    assert report.clean, report
    repair(report, memory_storage)

    # A re-run stores a second result; then deleting the image removes every file.
    rerun = client.post(f"/images/{image.id}/rerun/", {"matting": "off"})
    assert rerun.status_code == 201
    assert process_job.call(rerun.json()["job"]) == "done"
    assert Job.objects.filter(image=image, status=Job.Status.DONE).count() == 2
    assert client.post(f"/images/{image.id}/delete/").status_code == 302
    assert not Image.objects.exists() and not Result.objects.exists()
    assert _files(memory_storage) == []
    assert check_storage(memory_storage, min_age=timedelta(0)).clean
    # Nothing ever touched the local media folder, and the file code had nothing to complain
    # about (InMemoryStorage.path() names a folder under MEDIA_ROOT that does not exist).
    assert not web_settings.exists() or stored_files(web_settings) == []
    complaints = [
        record.getMessage()
        for record in caplog.records
        if record.name in ("editor.results", "editor.storage_check")
        and record.levelno >= logging.WARNING
    ]
    assert complaints == []
