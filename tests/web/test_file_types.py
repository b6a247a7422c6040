"""The supported formats are named the same everywhere: the decoder's refusal, the upload
page's hint and both file pickers' accept= come from one table (engine.preprocess)."""

from __future__ import annotations

import html
import re

import pytest
from django.test import Client

from bgremover.engine.preprocess import (
    FORMAT_FILE_TYPES,
    SUPPORTED_ACCEPT,
    SUPPORTED_FOR_PEOPLE,
    SUPPORTED_FORMATS,
)
from editor.models import Image
from tests.web.client import upload, visit

pytestmark = pytest.mark.django_db


def _accepts(page: str) -> list[set[str]]:
    return [
        set(html.unescape(value).split(","))
        for value in re.findall(r'<input type="file"[^>]*accept="([^"]*)"', page)
    ]


def test_the_hint_the_picker_and_the_refusal_name_the_same_formats(client: Client) -> None:
    page = visit(client).get("/").content.decode()
    assert f"{SUPPORTED_FOR_PEOPLE} · up to" in page
    assert _accepts(page) == [set(SUPPORTED_ACCEPT.split(","))]
    for fmt in SUPPORTED_FORMATS:
        label, mimes, extensions = FORMAT_FILE_TYPES[fmt]
        assert label in SUPPORTED_FOR_PEOPLE
        assert set(mimes) | set(extensions) <= _accepts(page)[0]
    refused = upload(client, "notes.png", b"just some text\n")
    assert refused.status_code == 415
    assert refused.json()["error"].endswith(f"Supported formats: {SUPPORTED_FOR_PEOPLE}.")


def test_the_background_picker_of_a_finished_image_names_every_format(
    client: Client, processed: Image
) -> None:
    page = client.get(f"/images/{processed.id}/").content.decode()
    assert _accepts(page) == [set(SUPPORTED_ACCEPT.split(","))]
