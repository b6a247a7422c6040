"""Retention: expiry stored per image and shown, the purge (function, command and periodic
thread), RETENTION_HOURS = 0, delete now / delete all, and the storage check."""

from __future__ import annotations

import io
import threading
import time
import uuid
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import TypeVar

import pytest
from django.contrib.sessions.models import Session
from django.core.management import call_command
from django.core.management.base import CommandError
from django.db import OperationalError
from django.test import Client
from django.utils import timezone
from django_tasks import TaskResultStatus
from django_tasks_db.models import DBTaskResult

from editor import retention
from editor.models import Image, Job, Result
from editor.retention import PeriodicMaintenance, purge_expired, run_maintenance
from editor.storage_check import LOST_RESULT
from editor.tasks import process_job
from tests.web.client import stored_files, upload, visit

pytestmark = pytest.mark.django_db

POLL_S = 0.05
T = TypeVar("T")


def expire(image: Image) -> None:
    Image.objects.filter(pk=image.pk).update(expires_at=timezone.now() - timedelta(seconds=1))


def folder(media: Path, image: Image | uuid.UUID) -> Path:
    return media / "images" / str(getattr(image, "id", image))


def beside_the_loop(action: Callable[[], T], timeout_s: float = 10.0) -> T:
    """``action()`` while the maintenance thread may be writing: the in-memory test database
    (SQLite's shared cache) answers a clash with "table is locked" at once, where a database
    file would wait out its busy timeout, so the action is tried again."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            return action()
        except OperationalError as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(POLL_S)


def wait_for(condition: Callable[[], bool], timeout_s: float, what: str) -> None:
    deadline = time.monotonic() + timeout_s
    while not beside_the_loop(condition):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(POLL_S)


# ---- Expiry


def test_expiry_is_stored_per_image_from_the_setting(
    client: Client, photo: bytes, settings: object
) -> None:
    settings.RETENTION_HOURS = 3  # type: ignore[attr-defined]
    image = Image.objects.get(pk=upload(client, "dog.jpg", photo).json()["image"])
    assert abs(image.expires_at - image.created_at - timedelta(hours=3)) < timedelta(seconds=5)


def test_gallery_and_editor_show_each_images_expiry(client: Client, uploaded: Image) -> None:
    expires = timezone.now() + timedelta(hours=5, minutes=30)
    Image.objects.filter(pk=uploaded.pk).update(expires_at=expires)
    gallery = client.get("/gallery/").content.decode()
    editor = client.get(f"/images/{uploaded.id}/").content.decode()
    assert "Deleted in 5\xa0hours" in gallery
    assert "deleted in 5\xa0hours" in editor
    for page in (gallery, editor):
        assert f'datetime="{timezone.localtime(expires).isoformat()}"' in page


# ---- Purge


def test_purge_deletes_expired_images_with_rows_and_files_and_nothing_else(
    client: Client, processed: Image, photo: bytes, web_settings: Path
) -> None:
    kept = Image.objects.get(pk=upload(client, "kept.jpg", photo).json()["image"])
    assert any(folder(web_settings, processed).rglob("*.png"))
    expire(processed)
    assert purge_expired() == [processed.id]
    assert not folder(web_settings, processed).exists()
    assert not Job.objects.filter(image_id=processed.id).exists()
    assert not Result.objects.exists()
    assert list(Image.objects.all()) == [kept]
    assert stored_files(web_settings) == [f"images/{kept.id}/original.jpg"]
    assert purge_expired() == []  # idempotent


def test_an_image_its_owner_came_back_for_during_the_purge_is_kept(
    client: Client,
    uploaded: Image,
    photo: bytes,
    web_settings: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    later = Image.objects.get(pk=upload(client, "later.jpg", photo).json()["image"])
    expire(uploaded)
    expire(later)
    real = retention.delete_image

    def owner_back_meanwhile(image: Image, **kwargs: object) -> bool:
        # While the purge deletes the first, the second's owner comes back (keep_alive).
        Image.objects.filter(pk=later.pk).update(expires_at=timezone.now() + timedelta(hours=1))
        return real(image, **kwargs)

    monkeypatch.setattr(retention, "delete_image", owner_back_meanwhile)
    assert purge_expired() == [uploaded.id]
    assert list(Image.objects.all()) == [later]
    assert stored_files(web_settings) == [f"images/{later.id}/original.jpg"]


def test_purge_command_dry_run_then_purge(client: Client, uploaded: Image, web_settings: Path):
    expire(uploaded)
    dry = io.StringIO()
    call_command("purge_expired", "--dry-run", "-v", "2", stdout=dry)
    assert "Would purge 1 expired image(s)." in dry.getvalue()
    assert str(uploaded.id) in dry.getvalue()
    assert Image.objects.filter(pk=uploaded.id).exists()
    assert folder(web_settings, uploaded).exists()

    for expected in ("Purged 1 expired image(s).", "Purged 0 expired image(s)."):
        out = io.StringIO()
        call_command("purge_expired", stdout=out)
        assert expected in out.getvalue()
    assert not Image.objects.exists()
    assert stored_files(web_settings) == []


@pytest.mark.django_db(transaction=True)
def test_purge_while_the_job_runs_stops_it_cleanly(
    client: Client, uploaded: Image, web_settings: Path, real_weights: None
) -> None:
    job = uploaded.latest_job()
    assert job is not None
    outcome: list[str] = []
    worker = threading.Thread(target=lambda: outcome.append(process_job.call(str(job.id))))
    worker.start()
    wait_for(
        lambda: Job.objects.get(pk=job.pk).status != Job.Status.QUEUED, 120, "the job to start"
    )
    expire(uploaded)
    assert purge_expired() == [uploaded.id]
    worker.join(timeout=300)
    assert outcome == ["gone"]
    assert not Result.objects.exists() and not Job.objects.exists()
    assert stored_files(web_settings) == []


@pytest.mark.django_db(transaction=True)
def test_periodic_maintenance_purges_on_its_own(
    client: Client, uploaded: Image, photo: bytes, web_settings: Path
) -> None:
    later = Image.objects.get(pk=upload(client, "later.jpg", photo).json()["image"])
    expire(uploaded)
    loop = PeriodicMaintenance(interval_s=0.2)
    loop.start()
    try:
        wait_for(lambda: not Image.objects.filter(pk=uploaded.id).exists(), 30, "the first purge")
        assert beside_the_loop(Image.objects.filter(pk=later.id).exists)
        beside_the_loop(lambda: expire(later))  # after the thread started: a later run takes it
        wait_for(lambda: not Image.objects.filter(pk=later.id).exists(), 30, "a later purge")
    finally:
        loop.stop()
        loop.join(timeout=30)
    assert not loop.is_alive()
    assert stored_files(web_settings) == []


def test_maintenance_clears_expired_sessions_and_old_task_records(
    client: Client, photo: bytes, django_capture_on_commit_callbacks: object
) -> None:
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        upload(client, "a.jpg", photo)
        upload(client, "b.jpg", photo)
    old, recent = DBTaskResult.objects.order_by("enqueued_at")
    finished = {"status": TaskResultStatus.SUCCESSFUL}
    DBTaskResult.objects.filter(pk=old.pk).update(
        **finished, finished_at=timezone.now() - timedelta(hours=25)
    )
    DBTaskResult.objects.filter(pk=recent.pk).update(**finished, finished_at=timezone.now())
    live_session = client.session.session_key
    Session.objects.create(
        session_key="x" * 32, session_data="", expire_date=timezone.now() - timedelta(days=1)
    )
    report = run_maintenance()
    assert report.task_records == 1
    assert list(DBTaskResult.objects.values_list("pk", flat=True)) == [recent.pk]
    assert list(Session.objects.values_list("session_key", flat=True)) == [live_session]


# ---- RETENTION_HOURS = 0


@pytest.fixture
def keep_nothing(settings: object) -> None:
    settings.RETENTION_HOURS = 0  # type: ignore[attr-defined]
    settings.RETENTION_IDLE_MINUTES = 15  # type: ignore[attr-defined]


def test_zero_retention_no_download_deletes_anything(
    keep_nothing: None, client: Client, processed: Image, web_settings: Path
) -> None:
    """No GET deletes: a prefetch or a link scanner must not destroy someone's work; the idle
    expiry takes the image once its owner has left."""
    files_before = stored_files(web_settings)
    job = processed.latest_job()
    assert job is not None
    rendered = client.get(f"/images/{processed.id}/download/", {"format": "png"})
    assert rendered.status_code == 200 and rendered.content.startswith(b"\x89PNG")
    cutout = client.get(f"/jobs/{job.id}/files/cutout")
    assert cutout.status_code == 200 and cutout["Content-Disposition"].startswith("attachment;")
    assert Image.objects.filter(pk=processed.pk).exists()
    assert stored_files(web_settings) == files_before
    assert client.get(f"/images/{processed.id}/download/").status_code == 200


def test_zero_retention_keeps_images_only_while_the_owner_is_around(
    keep_nothing: None, client: Client, photo: bytes
) -> None:
    page = " ".join(visit(client).get("/").content.decode().split())
    assert "deleted 15 minutes after you leave" in page
    image = Image.objects.get(pk=upload(client, "dog.jpg", photo).json()["image"])
    assert abs(image.expires_at - timezone.now() - timedelta(minutes=15)) < timedelta(seconds=5)

    # Thirteen minutes without a request: a stranger's visit changes nothing, the owner's does.
    nearly = timezone.now() + timedelta(minutes=2)
    Image.objects.filter(pk=image.pk).update(expires_at=nearly)
    visit(Client())
    assert Image.objects.get(pk=image.pk).expires_at == nearly
    client.get(f"/jobs/{image.latest_job().id}/status/")
    expires = Image.objects.get(pk=image.pk).expires_at
    assert abs(expires - timezone.now() - timedelta(minutes=15)) < timedelta(seconds=5)

    # The owner left: the purge takes it.
    expire(image)
    assert purge_expired() == [image.id]


# ---- Delete now, delete all


def test_delete_all_removes_every_image_of_the_owner_at_once(
    client: Client, processed: Image, photo: bytes, web_settings: Path
) -> None:
    second = Image.objects.get(pk=upload(client, "second.jpg", photo).json()["image"])
    stranger = visit(Client())
    theirs = Image.objects.get(pk=upload(stranger, "theirs.jpg", photo).json()["image"])
    assert 'action="/images/delete-all/"' in client.get("/gallery/").content.decode()

    response = client.post("/images/delete-all/", HTTP_ACCEPT="application/json")
    assert sorted(response.json()["deleted"]) == sorted([str(processed.id), str(second.id)])
    assert list(Image.objects.all()) == [theirs]
    assert not Result.objects.exists()
    assert stored_files(web_settings) == [f"images/{theirs.id}/original.jpg"]

    # Without JavaScript: the form posts and the browser lands on the (empty) gallery.
    upload(client, "third.jpg", photo)
    redirect = client.post("/images/delete-all/")
    assert redirect.status_code == 302 and redirect["Location"] == "/gallery/"
    assert "No images yet" in client.get("/gallery/").content.decode()
    assert list(Image.objects.all()) == [theirs]


# ---- Storage check


def test_check_storage_reports_and_repairs_both_kinds_of_disagreement(
    client: Client, processed: Image, photo: bytes, web_settings: Path
) -> None:
    lost = Image.objects.get(pk=upload(client, "lost.jpg", photo).json()["image"])
    (web_settings / lost.original.name).unlink()
    result = processed.latest_result()
    assert result is not None
    (web_settings / result.mask.name).unlink()
    ghost = folder(web_settings, uuid.uuid4())
    ghost.mkdir(parents=True)
    (ghost / "original.jpg").write_bytes(photo)
    stray = folder(web_settings, processed) / "stray.bin"
    stray.write_bytes(b"left over")

    report = io.StringIO()
    with pytest.raises(CommandError, match="run with --repair"):
        call_command("check_storage", "--min-age", "0", stdout=report)
    text = report.getvalue()
    assert "Orphaned files (stored, no row): 2" in text
    assert f"images/{ghost.name}/original.jpg" in text
    assert f"images/{processed.id}/stray.bin" in text
    assert "Rows without files: 2" in text
    assert f"original of {lost.id}" in text and f"result of {result.job_id}" in text

    call_command("check_storage", "--min-age", "0", "--repair", stdout=io.StringIO())
    assert not ghost.exists() and not stray.exists()
    assert not Image.objects.filter(pk=lost.id).exists()
    job = Job.objects.get(pk=result.job_id)
    assert job.status == Job.Status.FAILED and job.error == LOST_RESULT
    assert not Result.objects.exists()
    assert stored_files(web_settings) == [processed.original.name]
    assert client.get(f"/jobs/{job.id}/status/").json()["error"] == LOST_RESULT

    clean = io.StringIO()
    call_command("check_storage", "--min-age", "0", stdout=clean)
    assert "Storage and database agree." in clean.getvalue()


def test_check_storage_leaves_files_being_written_alone(
    client: Client, uploaded: Image, web_settings: Path
) -> None:
    fresh = folder(web_settings, uploaded) / "being-written.png"
    fresh.write_bytes(b"a job is saving this")
    out = io.StringIO()
    call_command("check_storage", stdout=out)  # default --min-age: ten minutes
    assert "Orphaned files (stored, no row): 0" in out.getvalue()
    assert fresh.exists()
