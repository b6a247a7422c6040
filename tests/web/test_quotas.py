"""Caps a flood cannot pass: jobs waiting or running per owner (429) and in all (503), and the
disk budget per owner and in all (507), with nothing already stored lost."""

from __future__ import annotations

import io
import uuid
from importlib import import_module
from pathlib import Path

import numpy as np
import pytest
from django.contrib.sessions.models import Session
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client
from PIL import Image as PILImage

from editor.models import Image, Job, Result
from editor.quotas import (
    RESERVED_BYTES_PER_PIXEL,
    active_jobs,
    disk_usage,
    reserved_bytes,
    stored_bytes,
)
from tests.web.client import named_file, stored_files, upload
from tests.web.factories import make_image, make_job

pytestmark = pytest.mark.django_db

WIDTH, HEIGHT = 64, 48
RESERVATION = WIDTH * HEIGHT * RESERVED_BYTES_PER_PIXEL


def small_jpeg(seed: int = 0, width: int = WIDTH, height: int = HEIGHT) -> bytes:
    noise = np.random.default_rng(seed).integers(0, 256, (height, width, 3), dtype=np.uint8)
    out = io.BytesIO()
    PILImage.fromarray(noise).save(out, "JPEG", quality=80)
    return out.getvalue()


PHOTO = small_jpeg()
# What one upload of PHOTO counts against a budget: the file, and room for its job's result.
NEEDED = len(PHOTO) + RESERVATION


def _accepted(client: Client, data: bytes = PHOTO) -> Image:
    response = upload(client, "small.jpg", data)
    assert response.status_code == 201, response.content
    return Image.objects.get(pk=response.json()["image"])


# ---- Queue


def test_an_owner_with_too_many_jobs_waiting_gets_a_429(settings: object) -> None:
    settings.JOB_QUEUE_LIMIT_PER_OWNER = 2  # type: ignore[attr-defined]
    client = Client()
    first, _ = _accepted(client), _accepted(client)
    refused = upload(client, "small.jpg", PHOTO)
    assert refused.status_code == 429
    assert refused["Retry-After"] == "30"
    assert refused.json()["error"] == (
        "You already have 2 images waiting or being processed, the most one browser may have "
        "at once. Please wait until some of them are done, then try again."
    )
    rerun = client.post(f"/images/{first.id}/rerun/", {"matting": "off"})
    assert rerun.status_code == 429 and rerun["Retry-After"] == "30"
    assert Image.objects.count() == 2 and Job.objects.count() == 2

    # Someone else is not held back; a finished job frees a place.
    _accepted(Client())
    Job.objects.filter(image=first).update(status=Job.Status.DONE)
    _accepted(client)
    assert upload(client, "small.jpg", PHOTO).status_code == 429
    # 0: no cap.
    settings.JOB_QUEUE_LIMIT_PER_OWNER = 0  # type: ignore[attr-defined]
    _accepted(client)


def test_a_full_queue_answers_503_to_everyone(settings: object) -> None:
    settings.JOB_QUEUE_LIMIT = 3  # type: ignore[attr-defined]
    owners = [Client() for _ in range(3)]
    images = [_accepted(owner) for owner in owners]
    newcomer = Client()
    refused = upload(newcomer, "small.jpg", PHOTO)
    assert refused.status_code == 503
    assert refused["Retry-After"] == "30"
    assert refused.json()["error"] == (
        "The server is busy: 3 images are waiting or being processed, the most it takes at "
        "once. Please try again in 30 seconds."
    )
    rerun = owners[0].post(f"/images/{images[0].id}/rerun/", {"matting": "on"})
    assert rerun.status_code == 503
    assert Image.objects.count() == 3 and Job.objects.count() == 3
    assert Session.objects.count() == 3  # the refused newcomer got no owner

    # Failed and finished jobs do not count; running ones do.
    Job.objects.filter(image=images[0]).update(status=Job.Status.FAILED)
    Job.objects.filter(image=images[1]).update(status=Job.Status.RUNNING)
    assert active_jobs() == 2
    _accepted(newcomer)
    assert upload(Client(), "small.jpg", PHOTO).status_code == 503
    settings.JOB_QUEUE_LIMIT = 0  # type: ignore[attr-defined]
    _accepted(Client())


# ---- Disk


def test_usage_sums_originals_backgrounds_results_and_reservations() -> None:
    mine, theirs = uuid.uuid4().hex, uuid.uuid4().hex
    image = make_image(mine)  # 1234 bytes, 40x30
    Image.objects.filter(pk=image.pk).update(background_bytes=500)
    done = Job.objects.create(image=image, status=Job.Status.DONE)
    Result.objects.create(job=done, size_bytes=10_000)
    Job.objects.create(image=image, status=Job.Status.FAILED)
    make_job(mine, status=Job.Status.QUEUED)  # another image, not processed yet
    make_job(mine, status=Job.Status.RUNNING)
    make_job(theirs, status=Job.Status.QUEUED)
    pixels = 40 * 30

    assert stored_bytes(mine) == 3 * 1234 + 500 + 10_000
    assert reserved_bytes(mine) == 2 * pixels * RESERVED_BYTES_PER_PIXEL
    assert disk_usage(mine) == stored_bytes(mine) + reserved_bytes(mine)
    assert disk_usage(theirs) == 1234 + pixels * RESERVED_BYTES_PER_PIXEL
    assert disk_usage() == disk_usage(mine) + disk_usage(theirs)
    assert disk_usage(uuid.uuid4().hex) == 0
    assert active_jobs(mine) == 2 and active_jobs() == 3


def test_an_owner_over_their_budget_gets_a_507_and_keeps_everything(
    settings: object, web_settings: Path
) -> None:
    assert len(PHOTO) < RESERVATION  # the arithmetic below relies on it
    settings.DISK_BUDGET_PER_OWNER_BYTES = NEEDED + RESERVATION - 1  # type: ignore[attr-defined]
    client = Client()
    image = _accepted(client)
    assert disk_usage(image.owner) == NEEDED
    before = stored_files(web_settings)

    refused = upload(client, "second.jpg", small_jpeg(seed=1))
    assert refused.status_code == 507
    message = refused.json()["error"]
    assert message.startswith("You are using ") and " of your " in message
    assert "Please delete some images you no longer need" in message
    rerun = client.post(f"/images/{image.id}/rerun/", {"matting": "off"})
    assert rerun.status_code == 507  # its result would need room too
    assert stored_files(web_settings) == before  # type: ignore[arg-type]
    assert list(Image.objects.all()) == [image] and Job.objects.count() == 1
    original = image.original
    with original.open("rb") as stored:
        assert stored.read() == PHOTO

    # Someone else has their own budget.
    _accepted(Client())
    # Once the job is done, the reservation gives way to the result's real size.
    Job.objects.filter(image=image).update(status=Job.Status.FAILED)
    assert disk_usage(image.owner) == len(PHOTO)
    _accepted(client)
    settings.DISK_BUDGET_PER_OWNER_BYTES = 0  # type: ignore[attr-defined]
    _accepted(client)


def test_a_full_server_answers_507_to_everyone(settings: object, web_settings: Path) -> None:
    settings.DISK_BUDGET_BYTES = NEEDED + NEEDED // 2  # type: ignore[attr-defined]
    first = Client()
    image = _accepted(first)
    before = stored_files(web_settings)
    for client in (Client(), first):
        refused = upload(client, "small.jpg", small_jpeg(seed=2))
        assert refused.status_code == 507
        assert refused.json()["error"] == (
            "This server's storage for uploads is full. Please try again later, when older "
            "images have been deleted."
        )
    assert stored_files(web_settings) == before  # type: ignore[arg-type]
    assert list(Image.objects.all()) == [image]
    assert Session.objects.count() == 1
    image.delete()
    _accepted(Client())


def test_a_background_over_the_budget_is_refused_and_the_old_one_kept(
    settings: object,
) -> None:
    client = Client()
    image = _accepted(client)
    small, large = small_jpeg(3, 32, 24), small_jpeg(4, 200, 150)
    answer = client.post(f"/images/{image.id}/background/", {"file": named_file("a.jpg", small)})
    assert answer.status_code == 201, answer.content
    image.refresh_from_db()
    assert image.background_bytes == len(small)
    used = disk_usage(image.owner)
    assert used == NEEDED + len(small)
    # Replacing the background needs only the difference: one byte short of it.
    budget = used + len(large) - len(small) - 1
    settings.DISK_BUDGET_PER_OWNER_BYTES = budget  # type: ignore[attr-defined]
    refused = client.post(f"/images/{image.id}/background/", {"file": named_file("b.jpg", large)})
    assert refused.status_code == 507
    assert "You are using" in refused.json()["error"]
    image.refresh_from_db()
    assert image.background_bytes == len(small)
    with image.background.open("rb") as stored:
        assert stored.read() == small
    settings.DISK_BUDGET_PER_OWNER_BYTES = budget + 1  # type: ignore[attr-defined]
    answer = client.post(f"/images/{image.id}/background/", {"file": named_file("b.jpg", large)})
    assert answer.status_code == 201
    image.refresh_from_db()
    assert image.background_bytes == len(large)


def test_a_stored_result_records_the_size_of_its_files(client: Client, processed: Image) -> None:
    result = processed.latest_result()
    assert result is not None
    sizes = [stored.size for stored in result.files()]
    assert all(size > 0 for size in sizes)
    assert result.size_bytes == sum(sizes)
    assert disk_usage(processed.owner) == processed.size_bytes + result.size_bytes


def test_the_migration_measures_what_was_stored_before_it() -> None:
    from django.apps import apps

    fill_sizes = import_module("editor.migrations.0002_storage_sizes").fill_sizes
    image = make_image(uuid.uuid4().hex)
    background = default_storage.save(f"images/{image.id}/background.jpg", ContentFile(PHOTO))
    Image.objects.filter(pk=image.pk).update(background=background)
    job = Job.objects.create(image=image, status=Job.Status.DONE)
    cutout = default_storage.save(f"images/{image.id}/{job.id}/cutout.png", ContentFile(b"x" * 7))
    mask = default_storage.save(f"images/{image.id}/{job.id}/mask.png", ContentFile(b"y" * 5))
    # Files already gone (and empty names) count as nothing.
    Result.objects.create(job=job, cutout=cutout, mask=mask, preview_cutout="images/gone.png")
    fill_sizes(apps, None)
    image.refresh_from_db()
    assert image.background_bytes == len(PHOTO)
    assert Result.objects.get(job=job).size_bytes == 12
