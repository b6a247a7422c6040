"""Fuzzing the upload handler and, through it, the image decoder (a bounded number of runs).

Damaged images with hostile names, and raw request bodies, go through the real view. Every
answer must be a 201 or a clear JSON 4xx; a refusal leaves no row and no file; an exception
fails the test (the test client re-raises it) and pytest-timeout turns a hang into a failure.
"""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pytest
from django.test import Client
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image as PILImage

from editor.models import Image
from editor.results import delete_image
from tests.web.client import stored_files, upload

pytestmark = [pytest.mark.django_db, pytest.mark.timeout(600)]

FUZZ = settings(
    max_examples=200,
    deadline=None,
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
REFUSALS = {400, 413, 415}


def _seed_image(fmt: str) -> bytes:
    rng = np.random.default_rng(7)
    pixels = rng.integers(0, 255, (12, 16, 4 if fmt in ("PNG", "WEBP") else 3), np.uint8)
    buffer = io.BytesIO()
    PILImage.fromarray(pixels).save(buffer, fmt)
    return buffer.getvalue()


SEEDS = {fmt: _seed_image(fmt) for fmt in ("PNG", "JPEG", "GIF", "WEBP", "BMP", "TIFF")}


@st.composite
def damaged_images(draw: st.DrawFn) -> bytes:
    data = bytearray(SEEDS[draw(st.sampled_from(sorted(SEEDS)))])
    for _ in range(draw(st.integers(0, 6))):
        position = draw(st.integers(0, len(data) - 1))
        action = draw(st.sampled_from(["set", "insert", "delete", "truncate"]))
        if action == "set":
            data[position] = draw(st.integers(0, 255))
        elif action == "insert":
            data[position:position] = draw(st.binary(min_size=1, max_size=16))
        elif action == "delete":
            del data[position : position + draw(st.integers(1, 16))]
        elif position > 0:
            del data[position:]
        if not data:
            break
    return bytes(data)


filenames = st.one_of(
    st.sampled_from(["photo.png", "../x.png", "a\\b.jpg", "x" * 300, ".png", "—.jpg"]),
    st.text(min_size=0, max_size=80),
)


def _check(response: object, media: Path) -> None:
    status = response.status_code  # type: ignore[attr-defined]
    assert status == 201 or status in REFUSALS, (status, response.content)  # type: ignore[attr-defined]
    body = response.json()  # type: ignore[attr-defined]
    if status == 201:
        image = Image.objects.get(pk=body["image"])
        assert image.original.name.startswith(f"images/{image.id}/original.")
        assert image.original_name.isprintable() and "/" not in image.original_name
        delete_image(image)
    else:
        assert isinstance(body["error"], str) and body["error"].strip()
        assert "Traceback" not in body["error"]
    assert not Image.objects.exists()
    assert stored_files(media) == []


def test_damaged_images_with_odd_names(client: Client, web_settings: Path, settings: object):
    settings.RATE_LIMIT_UPLOADS = "off"  # type: ignore[attr-defined]
    settings.RATE_LIMIT_UPLOADS_PER_ADDRESS = "off"  # type: ignore[attr-defined]

    @FUZZ
    @given(data=damaged_images(), name=filenames)
    def run(data: bytes, name: str) -> None:
        _check(upload(client, name or "unnamed", data), web_settings)

    run()


def test_raw_request_bodies(client: Client, web_settings: Path, settings: object) -> None:
    settings.RATE_LIMIT_UPLOADS = "off"  # type: ignore[attr-defined]
    settings.RATE_LIMIT_UPLOADS_PER_ADDRESS = "off"  # type: ignore[attr-defined]
    boundary = "fuzzboundary"
    part_head = (
        f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="a.png"\r\n'
        "Content-Type: image/png\r\n\r\n"
    ).encode()

    @FUZZ
    @given(
        prefix=st.sampled_from([b"", part_head, part_head + SEEDS["PNG"][:40]]),
        tail=st.binary(max_size=400),
        content_type=st.sampled_from(
            [f"multipart/form-data; boundary={boundary}", "multipart/form-data", "image/png"]
        ),
    )
    def run(prefix: bytes, tail: bytes, content_type: str) -> None:
        response = client.generic("POST", "/upload/", prefix + tail, content_type=content_type)
        _check(response, web_settings)

    run()
