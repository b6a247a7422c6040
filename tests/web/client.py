"""Helpers that drive the app through Django's test client the way a browser would."""

from __future__ import annotations

import io
from pathlib import Path

from django.test import Client
from PIL import Image as PILImage

PHOTO = "ecssd_0070"  # a dog on grass: subject in the middle, background at every corner


def visit(client: Client) -> Client:
    """Open the upload page, as a browser does first. It creates no session: a browser's
    first upload creates its owner (editor.ownership)."""
    assert client.get("/").status_code == 200
    return client


def named_file(name: str, data: bytes) -> io.BytesIO:
    stream = io.BytesIO(data)
    stream.name = name
    return stream


def upload(client: Client, name: str, data: bytes, **extra: object) -> object:
    return client.post("/upload/", {"file": named_file(name, data)}, **extra)


def decode(data: bytes) -> PILImage.Image:
    image = PILImage.open(io.BytesIO(data))
    image.load()
    return image


def stored_files(media_root: Path) -> list[str]:
    """Every file under the media folder, relative to it (sorted)."""
    return sorted(
        str(path.relative_to(media_root)) for path in media_root.rglob("*") if path.is_file()
    )
