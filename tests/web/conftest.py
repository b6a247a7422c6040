"""Web tests run with media in a temporary folder, the shared real weights, and static files
served from the source tree (the suite does not run collectstatic)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client

from editor.models import Image
from editor.tasks import process_job
from tests.web.client import PHOTO, upload, visit


@pytest.fixture(autouse=True)
def web_settings(settings: object, tmp_path: Path) -> Iterator[Path]:
    media = tmp_path / "media"
    settings.MEDIA_ROOT = str(media)  # type: ignore[attr-defined]
    settings.STORAGES = {  # type: ignore[attr-defined]
        **settings.STORAGES,  # type: ignore[attr-defined]
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    yield media


@pytest.fixture(autouse=True)
def fresh_rate_limits() -> Iterator[None]:
    """Rate-limit counters live in the (per-process) cache: each test starts from zero."""
    cache.clear()
    yield
    cache.clear()


@pytest.fixture
def real_weights(settings: object, u2netp_weights: Path) -> None:
    settings.MODEL_DIR = str(u2netp_weights.parent)  # type: ignore[attr-defined]


@pytest.fixture
def photo(eval_dir: Path) -> bytes:
    return (eval_dir / "sod" / "images" / f"{PHOTO}.jpg").read_bytes()


@pytest.fixture
def uploaded(client: Client, photo: bytes) -> Image:
    """An uploaded photo whose job has not run (enough for pages and ownership)."""
    visit(client)
    response = upload(client, "dog photo.jpg", photo)
    assert response.status_code == 201, response.content
    return Image.objects.get(pk=response.json()["image"])


@pytest.fixture
def processed(
    client: Client, photo: bytes, real_weights: None, django_capture_on_commit_callbacks: object
) -> Image:
    """An uploaded photo whose job ran through the real pipeline."""
    visit(client)
    with django_capture_on_commit_callbacks(execute=True):  # type: ignore[operator]
        response = upload(client, "dog photo.jpg", photo)
    assert response.status_code == 201, response.content
    job_id = response.json()["job"]
    assert process_job.call(job_id) == "done"
    return Image.objects.get(pk=response.json()["image"])
