"""Web tests run with media in a temporary folder, the shared real weights, and static files
served from the source tree (the suite does not run collectstatic)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest


@pytest.fixture(autouse=True)
def web_settings(settings: object, tmp_path: Path) -> Iterator[Path]:
    media = tmp_path / "media"
    settings.MEDIA_ROOT = str(media)  # type: ignore[attr-defined]
    settings.STORAGES = {  # type: ignore[attr-defined]
        **settings.STORAGES,  # type: ignore[attr-defined]
        "staticfiles": {"BACKEND": "django.contrib.staticfiles.storage.StaticFilesStorage"},
    }
    yield media
