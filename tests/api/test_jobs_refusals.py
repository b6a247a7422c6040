"""Bad submissions to the jobs API: each refused in remove.bg's error shape with its status,
before any work where it can be, and a refused submission stores nothing (no rows, no files),
even when some of its images were already admitted."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest
from django.core.cache import cache
from django.test import Client

from api.models import ApiJob, ApiKey
from editor.heavy import heavy_operation
from editor.models import Job
from tests.api.jobs_support import (
    JOBS,
    auth,
    named,
    nothing_stored,
    png,
    refused,
    stored_files,
    submit,
    submit_json,
)
from tests.web.factories import make_job

pytestmark = pytest.mark.django_db


@pytest.fixture(autouse=True)
def media(settings: Any, tmp_path: Path) -> Path:
    settings.MEDIA_ROOT = str(tmp_path / "media")
    cache.clear()  # rate-limit counters
    return tmp_path / "media"


@pytest.fixture
def key() -> str:
    return ApiKey.create("shop").text


def submitted_ids(response: Any) -> list[str]:
    assert response.status_code == 202, response.content
    return [job["id"] for job in response.json()["data"]]


def test_no_image_or_too_many_images(client: Client, key: str, settings: Any, media: Path) -> None:
    assert "image_file" in refused(submit(client, key, {"matting": "on"}), 400, "missing_image")
    settings.API_JOBS_MAX_FILES = 2
    files = [named(png(), f"{n}.png") for n in range(3)]
    title = refused(submit(client, key, {"image_file": files}), 400, "too_many_images")
    assert "3" in title and "2" in title
    nothing_stored(media)


def test_bad_matting_is_refused(client: Client, key: str, media: Path) -> None:
    title = refused(
        submit(client, key, {"image_file": named(png()), "matting": "maybe"}),
        400,
        "invalid_parameters",
    )
    assert title.startswith("matting:")
    nothing_stored(media)


@pytest.mark.parametrize(
    "url",
    [
        "http://127.0.0.1/hook",  # loopback
        "http://10.0.0.5/hook",  # private network
        "http://169.254.169.254/latest/meta-data/",  # cloud metadata
        "file:///etc/passwd",
        "ftp://example.com/hook",
        "http://user:secret@example.com/hook",
        "http://example.com:22/hook",  # not a web port
        "not a url",
    ],
)
def test_a_bad_webhook_url_is_refused(client: Client, key: str, media: Path, url: str) -> None:
    response = submit(client, key, {"image_file": named(png()), "webhook_url": url})
    assert refused(response, 400, "invalid_webhook_url").startswith("webhook_url:")
    nothing_stored(media)


def test_a_loopback_webhook_is_accepted_when_the_operator_allows_it(
    client: Client, key: str, settings: Any
) -> None:
    settings.API_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]
    url = "http://127.0.0.1:8123/hook"
    (job_id,) = submitted_ids(submit(client, key, {"image_file": named(png()), "webhook_url": url}))
    assert ApiJob.objects.get(pk=job_id).webhook_url == url
    assert client.get(f"{JOBS}/{job_id}", **auth(key)).json()["data"]["webhook_url"] == url


def test_image_urls_are_refused_while_turned_off(client: Client, key: str, media: Path) -> None:
    title = refused(
        submit_json(client, key, {"image_url": "https://example.com/a.jpg"}),
        400,
        "image_urls_disabled",
    )
    assert "turned off" in title
    nothing_stored(media)


def test_the_rate_limit_counts_images(client: Client, media: Path) -> None:
    key = ApiKey.create("slow", rate="3/1m").text
    submitted_ids(submit(client, key, {"image_file": [named(png()), named(png())]}))
    response = submit(client, key, {"image_file": [named(png()), named(png())]})
    assert "Rate limit" in refused(response, 429, "rate_limit_exceeded")
    assert 1 <= int(response["Retry-After"]) <= 60
    assert (response["X-RateLimit-Limit"], response["X-RateLimit-Remaining"]) == ("3", "0")
    assert Job.objects.count() == 2


def test_the_monthly_quota_must_cover_every_image(client: Client, media: Path) -> None:
    key = ApiKey.create("thrifty", monthly_quota=Decimal("0.5"))
    files = [named(png(), f"{n}.png") for n in range(3)]  # 0.25 credits each
    response = submit(client, key.text, {"image_file": files})
    assert "0.75" in refused(response, 402, "insufficient_credits")
    assert response["X-RateLimit-Remaining"]
    nothing_stored(media)
    two = [named(png(), f"{n}.png") for n in range(2)]
    assert len(submitted_ids(submit(client, key.text, {"image_file": two}))) == 2


def test_a_full_queue_refuses_the_whole_request_with_retry_after(
    client: Client, key: str, settings: Any, media: Path
) -> None:
    make_job("a-browser-owner")  # someone else's job, waiting
    settings.JOB_QUEUE_LIMIT = 2
    files = [named(png(), f"{n}.png") for n in range(2)]
    response = submit(client, key, {"image_file": files})
    assert "busy" in refused(response, 503, "server_busy")
    assert response["Retry-After"] == "30"
    # The first image was admitted and written before the second was refused: both gone.
    assert Job.objects.count() == 1 and not ApiJob.objects.exists()
    assert stored_files(media) == []


def test_this_keys_own_queue_cap(client: Client, key: str, settings: Any, media: Path) -> None:
    settings.JOB_QUEUE_LIMIT_PER_OWNER = 2
    files = [named(png(), f"{n}.png") for n in range(3)]
    response = submit(client, key, {"image_file": files})
    assert "this key" in refused(response, 429, "queue_full").lower()
    assert response["Retry-After"]
    nothing_stored(media)


def test_an_unreadable_file_refuses_the_request_and_says_which(
    client: Client, key: str, media: Path
) -> None:
    files = [named(png(), "a.png"), named(b"just some text", "notes.png"), named(png(), "c.png")]
    title = refused(submit(client, key, {"image_file": files}), 415, "invalid_file_type")
    assert title.startswith("Image 2 of 3 (image_file): notes.png")
    nothing_stored(media)
    alone = refused(
        submit(client, key, {"image_file": named(b"GIF89a", "x.gif")}), 415, "invalid_file_type"
    )
    assert alone.startswith("x.gif")


def test_oversize_images_are_refused(client: Client, key: str, settings: Any, media: Path) -> None:
    big = png(400, 300, (10, 200, 90))
    settings.MAX_UPLOAD_BYTES = len(big) - 1
    refused(submit(client, key, {"image_file": named(big)}), 413, "file_too_large")
    settings.MAX_UPLOAD_PIXELS = 1000
    settings.MAX_UPLOAD_BYTES = 10 * len(big)
    refused(submit(client, key, {"image_file": named(big)}), 413, "file_too_large")
    # Each fits, but not all of them together.
    settings.MAX_UPLOAD_PIXELS = 1_000_000
    settings.MAX_UPLOAD_BYTES = len(big) + 10
    title = refused(
        submit(client, key, {"image_file": [named(big), named(big)]}), 413, "file_too_large"
    )
    assert "Together" in title
    # Counted as sent: data after the picture's end is held until stored too.
    small = png(40, 30)
    padded = small + bytes(len(big))
    settings.MAX_UPLOAD_BYTES = len(padded) + 10
    both = submit(client, key, {"image_file": [named(padded), named(small)]})
    assert "Together" in refused(both, 413, "file_too_large")
    nothing_stored(media)


def test_an_unreadable_body_is_refused(client: Client, key: str) -> None:
    broken = client.post(JOBS, "{nope", content_type="application/json", **auth(key))
    refused(broken, 400, "invalid_parameters")
    # Python's JSON reader refuses these with other errors than a syntax error.
    for body in (b'{"size": ' + b"1" * 5000 + b"}", b"[" * 100_000 + b"]" * 100_000):
        too_much = client.post(JOBS, body, content_type="application/json", **auth(key))
        refused(too_much, 400, "invalid_parameters")
    listed = client.post(
        JOBS,
        json.dumps({"image_file_b64": ["a", "b"]}),
        content_type="application/json",
        **auth(key),
    )
    refused(listed, 400, "invalid_parameters")
    odd = client.post(JOBS, b"hello", content_type="text/plain", **auth(key))
    refused(odd, 415, "invalid_content_type")


def test_a_busy_server_answers_503_and_stores_nothing(
    client: Client, key: str, settings: Any, media: Path
) -> None:
    settings.HEAVY_OPERATIONS = 1
    settings.HEAVY_WAIT_S = 0
    with heavy_operation(None):  # every slot taken
        response = submit(client, key, {"image_file": named(png())})
    assert refused(response, 503, "server_busy")
    assert response["Retry-After"]
    nothing_stored(media)
