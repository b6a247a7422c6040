"""Helpers the jobs API tests share: small pictures, calls with a key, refusals."""

from __future__ import annotations

import io
import json
from pathlib import Path
from typing import Any

from django.test import Client
from PIL import Image as PILImage

from editor.models import Image, Job

JOBS = "/api/v1/jobs"


def png(width: int = 64, height: int = 48, color: tuple[int, int, int] = (200, 40, 40)) -> bytes:
    buffer = io.BytesIO()
    PILImage.new("RGB", (width, height), color).save(buffer, "PNG")
    return buffer.getvalue()


def named(data: bytes, name: str = "photo.png") -> io.BytesIO:
    stream = io.BytesIO(data)
    stream.name = name
    return stream


def auth(key: str | None) -> dict[str, str]:
    return {"HTTP_X_API_KEY": key} if key else {}


def submit(client: Client, key: str | None, data: dict[str, Any], **extra: Any) -> Any:
    """POST /api/v1/jobs as multipart (lists repeat a field)."""
    return client.post(JOBS, data, **auth(key), **extra)


def submit_json(client: Client, key: str | None, data: dict[str, Any]) -> Any:
    return client.post(JOBS, json.dumps(data), content_type="application/json", **auth(key))


def refused(response: Any, status: int, code: str) -> str:
    """The refusal's title, after checking its status, code and remove.bg's shape."""
    assert response.status_code == status, response.content
    body = json.loads(response.content)
    (error,) = body["errors"]
    assert error["code"] == code and error["title"], body
    return error["title"]


def stored_files(media: Path) -> list[Path]:
    return [path for path in media.rglob("*") if path.is_file()] if media.exists() else []


def nothing_stored(media: Path) -> None:
    assert not Image.objects.exists() and not Job.objects.exists()
    assert stored_files(media) == []
