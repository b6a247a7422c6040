"""The remove.bg-compatible call refuses every bad request before any work, in remove.bg's
error shape and with its statuses, and stores nothing when it does."""

from __future__ import annotations

import base64
import io
import time
from decimal import Decimal
from pathlib import Path

import pytest
from django.core.cache import cache
from django.test import Client
from PIL import Image as PILImage

from api.models import ApiKey
from editor.models import Image, Job
from editor.operations import REGISTRY
from tests.api.jobs_support import auth, named, png, refused
from tests.api.local_servers import answer, serve
from tests.web.factories import make_job

pytestmark = pytest.mark.django_db(transaction=True)
URL = "/api/v1.0/removebg"


@pytest.fixture(autouse=True)
def api_settings(settings: object, tmp_path: Path) -> None:
    settings.MEDIA_ROOT = str(tmp_path / "media")  # type: ignore[attr-defined]
    settings.API_SYNC_WAIT_S = 5  # type: ignore[attr-defined]  (no worker runs here)
    cache.clear()


@pytest.fixture
def key() -> str:
    return ApiKey.create("test").text


def photo_file(data: bytes | None = None, name: str = "photo.png") -> io.BytesIO:
    return named(data if data is not None else png(), name)


def post(client: Client, key: str | None, data: dict, **extra: object) -> object:
    return client.post(URL, data, **auth(key), **extra)


def nothing_stored() -> None:
    assert not Image.objects.exists() and not Job.objects.exists()


def refusals(reason: str) -> float:
    return REGISTRY.get_sample_value("bgremover_refusals_total", {"reason": reason}) or 0.0


def test_a_key_is_needed(client: Client) -> None:
    before = refusals("api_auth")
    assert "X-Api-Key" in refused(
        post(client, None, {"image_file": photo_file()}), 403, "auth_failed"
    )
    refused(post(client, "bgr_" + "x" * 40, {"image_file": photo_file()}), 403, "auth_failed")
    new = ApiKey.create("gone")
    new.key.revoke()
    refused(post(client, new.text, {"image_file": photo_file()}), 403, "auth_failed")
    bearer = client.post(URL, {}, HTTP_AUTHORIZATION="Bearer nonsense")
    refused(bearer, 403, "auth_failed")
    assert refusals("api_auth") == before + 4  # counted in /metrics
    nothing_stored()


@pytest.mark.parametrize(
    ("field", "value", "named"),
    [
        ("size", "huge", "size"),
        ("format", "gif", "format"),
        ("channels", "rgb", "channels"),
        ("bg_color", "not-a-colour", "colour"),
        ("scale", "5%", "scale"),
        ("position", "150%", "position"),
        ("crop", "maybe", "crop"),
        ("crop_margin", "10 apples", "margin"),
        ("roi", "1 2 3", "roi"),
        ("shadow_type", "neon", "shadow"),
        ("shadow_opacity", "250", "opacity"),
        ("type", "spaceship", "type"),
        ("matting", "sometimes", "matting"),
        ("canvas", "99999x99999", "canvas"),
        ("semitransparency", "perhaps", "semitransparency"),
    ],
)
def test_bad_parameters_are_named(
    client: Client, key: str, field: str, value: str, named: str
) -> None:
    title = refused(
        post(client, key, {"image_file": photo_file(), field: value}), 400, "invalid_parameters"
    )
    assert named in title.lower()
    nothing_stored()


def test_a_bad_shadow_setting_is_named_itself_not_shadow_type(client: Client, key: str) -> None:
    fields = {"image_file": photo_file(), "shadow_opacity": "40", "shadow_softness": "80%"}
    title = refused(post(client, key, fields), 400, "invalid_parameters")
    assert title.startswith("shadow softness must be from 0 % to 50 %"), title
    nothing_stored()


def test_bad_image_sources(client: Client, key: str, settings: object) -> None:
    refused(post(client, key, {"size": "preview"}), 400, "missing_source")
    both = {"image_file": photo_file(), "image_file_b64": base64.b64encode(png()).decode()}
    refused(post(client, key, both), 400, "multiple_sources")
    refused(post(client, key, {"image_file_b64": "!!not base64!!"}), 400, "invalid_parameters")
    text = photo_file(b"just some text", "notes.txt")
    refused(post(client, key, {"image_file": text}), 415, "invalid_file_type")
    settings.MAX_UPLOAD_BYTES = 1000  # type: ignore[attr-defined]
    big = photo_file(png(400, 400) + b"\0" * 2000)
    refused(post(client, key, {"image_file": big}), 413, "file_too_large")
    nothing_stored()


def test_image_urls_are_off_by_default_and_never_private(
    client: Client, key: str, settings: object
) -> None:
    with serve({"/photo.png": lambda handler: answer(handler, png())}) as server:
        url = server.url("/photo.png")
        assert "turned off" in refused(
            post(client, key, {"image_url": url}), 400, "image_urls_disabled"
        )
        settings.API_IMAGE_URLS = True  # type: ignore[attr-defined]
        refused(post(client, key, {"image_url": url}), 400, "url_port")
        loopback = "http://127.0.0.1/photo.png"
        assert "private" in refused(
            post(client, key, {"image_url": loopback}), 400, "url_forbidden"
        )
        metadata = "http://169.254.169.254/latest/meta-data/"
        refused(post(client, key, {"image_url": metadata}), 400, "url_forbidden")
        assert server.requests == []  # never connected
    nothing_stored()


def test_bodies_that_cannot_be_read(client: Client, key: str) -> None:
    headers = {"HTTP_X_API_KEY": key}
    bad_json = client.post(URL, b"{nope", content_type="application/json", **headers)
    refused(bad_json, 400, "invalid_parameters")
    a_list = client.post(URL, b"[1, 2]", content_type="application/json", **headers)
    refused(a_list, 400, "invalid_parameters")
    nested = client.post(URL, {"size": {"a": 1}}, content_type="application/json", **headers)
    refused(nested, 400, "invalid_parameters")
    # Python's JSON reader refuses these with other errors than a syntax error.
    huge_number = b'{"size": ' + b"1" * 5000 + b"}"
    refused(
        client.post(URL, huge_number, content_type="application/json", **headers),
        400,
        "invalid_parameters",
    )
    deep = b'{"size": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    refused(
        client.post(URL, deep, content_type="application/json", **headers),
        400,
        "invalid_parameters",
    )
    xml = client.post(URL, b"<x/>", content_type="application/xml", **headers)
    refused(xml, 415, "invalid_content_type")
    assert client.get(URL, **headers).status_code == 405
    nothing_stored()


def test_rate_limit_per_key(client: Client, settings: object) -> None:
    settings.API_RATE_LIMIT = "2/1h"  # type: ignore[attr-defined]
    text = ApiKey.create("limited").text
    for _ in range(2):  # bad requests count too: they cost the server work
        refused(post(client, text, {"size": "preview"}), 400, "missing_source")
    response = post(client, text, {"image_file": photo_file()})
    refused(response, 429, "rate_limit_exceeded")
    assert int(response["Retry-After"]) > 0
    assert response["X-RateLimit-Limit"] == "2" and response["X-RateLimit-Remaining"] == "0"
    other = ApiKey.create("other").text  # another key has its own count
    refused(post(client, other, {"size": "preview"}), 400, "missing_source")
    nothing_stored()


def test_quota_refuses_before_any_work(client: Client) -> None:
    key = ApiKey.create("poor", monthly_quota=1)
    key.key.charge(1)
    title = refused(
        post(client, key.text, {"image_file": photo_file()}), 402, "insufficient_credits"
    )
    assert "0.25" in title  # what the image would cost
    nothing_stored()


def test_the_quota_check_counts_the_canvas_the_result_will_have(client: Client) -> None:
    key = ApiKey.create("poor", monthly_quota=1)
    key.key.charge(Decimal("0.5"))
    # 400×300 alone is a preview's price (0.25); padded to 1:20 it is 400×8000 (1 credit).
    tall = {"image_file": photo_file(png(400, 300)), "canvas": "1:20"}
    title = refused(post(client, key.text, tall), 402, "insufficient_credits")
    assert "this image costs 1 and the key has 0.5" in title, title
    nothing_stored()


def test_full_queue_is_busy(client: Client, key: str, settings: object) -> None:
    settings.JOB_QUEUE_LIMIT = 1  # type: ignore[attr-defined]
    make_job("someone-else")
    response = post(client, key, {"image_file": photo_file()})
    refused(response, 503, "server_busy")
    assert response["Retry-After"]
    assert Image.objects.count() == 1  # only the other owner's


def test_account_needs_a_key_and_reports_the_quota(client: Client) -> None:
    refused(client.get("/api/v1.0/account"), 403, "auth_failed")
    new = ApiKey.create("shop", monthly_quota=10)
    new.key.charge(1)
    response = client.get("/api/v1.0/account", HTTP_X_API_KEY=new.text)
    assert response.status_code == 200
    attributes = response.json()["data"]["attributes"]
    assert attributes["credits"]["total"] == 9
    assert attributes["bgremover"]["images"] == 1
    assert response["X-RateLimit-Limit"]


def test_a_hint_map_that_does_not_fit_is_refused_before_any_work(client: Client, key: str) -> None:
    wrong_size = io.BytesIO()
    PILImage.new("L", (65, 48), 128).save(wrong_size, "PNG")
    colour = io.BytesIO()
    PILImage.new("RGB", (64, 48)).save(colour, "PNG")
    for hints, expected in ((wrong_size, "65×48 but the photo is 64×48"), (colour, "8-bit grey")):
        hints.name = "hints.png"
        hints.seek(0)
        title = refused(
            post(client, key, {"image_file": photo_file(), "hints_file": hints}),
            400,
            "invalid_parameters",
        )
        assert expected in title
    nothing_stored()


def test_a_job_not_done_within_the_wait_is_busy_and_leaves_nothing(
    client: Client, key: str, settings: object
) -> None:
    settings.API_SYNC_WAIT_S = 1  # type: ignore[attr-defined]  (no worker runs here)
    response = post(client, key, {"image_file": photo_file()})
    assert "not processed in time" in refused(response, 503, "server_busy")
    assert int(response["Retry-After"]) > 0
    deadline = time.monotonic() + 5  # the image goes as the answer goes out
    while Image.objects.exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    nothing_stored()
