"""Per-owner rate limits on uploads (and re-runs, backgrounds) and downloads: a clear 429
with Retry-After, other owners unaffected, previews not counted, limits from settings."""

from __future__ import annotations

import time

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from editor.models import Image
from editor.ratelimit import Rate, check_rate_settings, parse_rate
from tests.fixtures import hostile
from tests.web.client import named_file, upload, visit

pytestmark = pytest.mark.django_db

TINY = hostile.one_pixel()[1]


@pytest.mark.parametrize(
    ("text", "rate"),
    [
        ("30/10m", Rate(30, 600)),
        ("5/s", Rate(5, 1)),
        (" 100 / 2h ", Rate(100, 7200)),
        ("1/1d", Rate(1, 86400)),
        ("off", None),
        ("0", None),
        ("", None),
    ],
)
def test_rates_parse(text: str, rate: Rate | None) -> None:
    assert parse_rate(text) == rate


@pytest.mark.parametrize("text", ["30", "30/10", "ten/m", "0/1m", "30/10w", "-1/m"])
def test_malformed_rates_are_refused_with_a_clear_message(text: str, settings: object) -> None:
    with pytest.raises(ImproperlyConfigured, match="must look like 30/10m"):
        parse_rate(text, "RATE_LIMIT_UPLOADS")
    settings.RATE_LIMIT_DOWNLOADS = text  # type: ignore[attr-defined]
    errors = check_rate_settings()
    assert [error.id for error in errors] == ["editor.E002"]
    assert "RATE_LIMIT_DOWNLOADS must look like 30/10m" in errors[0].msg


def test_uploads_over_the_limit_get_a_429_with_retry_after(
    client: Client, settings: object
) -> None:
    settings.RATE_LIMIT_UPLOADS = "2/1h"  # type: ignore[attr-defined]
    visit(client)
    first, second, third = (upload(client, "pixel.png", TINY) for _ in range(3))
    assert [first.status_code, second.status_code] == [201, 201]
    assert third.status_code == 429
    assert third.json()["error"].startswith(
        "Too many uploads: the limit is 2 every 60 minutes per browser. Please try again in"
    )
    assert 0 < int(third["Retry-After"]) <= 3600
    assert Image.objects.count() == 2

    # Re-runs and custom backgrounds start work too: they count against the same limit.
    image_id = first.json()["image"]
    assert client.post(f"/images/{image_id}/rerun/", {"matting": "off"}).status_code == 429
    background = {"file": named_file("bg.png", TINY)}
    assert client.post(f"/images/{image_id}/background/", background).status_code == 429

    # Someone else is not held back by this owner.
    assert upload(visit(Client()), "pixel.png", TINY).status_code == 201


def test_the_limit_lifts_when_its_window_ends(client: Client, settings: object) -> None:
    settings.RATE_LIMIT_UPLOADS = "1/1s"  # type: ignore[attr-defined]
    visit(client)
    assert upload(client, "pixel.png", TINY).status_code == 201
    refused = upload(client, "pixel.png", TINY)
    assert refused.status_code == 429 and refused["Retry-After"] == "1"
    time.sleep(1.05)
    assert upload(client, "pixel.png", TINY).status_code == 201


def test_off_means_no_limit(client: Client, settings: object) -> None:
    settings.RATE_LIMIT_UPLOADS = "off"  # type: ignore[attr-defined]
    visit(client)
    assert {upload(client, "pixel.png", TINY).status_code for _ in range(5)} == {201}


def test_downloads_over_the_limit_get_a_429_but_previews_do_not_count(
    client: Client, processed: Image, settings: object
) -> None:
    settings.RATE_LIMIT_DOWNLOADS = "2/10m"  # type: ignore[attr-defined]
    job = processed.latest_job()
    assert job is not None
    for _ in range(3):
        for name in ("thumb-original", "thumb-cutout", "preview-original", "preview-cutout"):
            assert client.get(f"/jobs/{job.id}/files/{name}").status_code == 200
    assert client.get(f"/images/{processed.id}/download/").status_code == 200
    assert client.get(f"/jobs/{job.id}/files/cutout").status_code == 200
    for url in (f"/jobs/{job.id}/files/mask", f"/images/{processed.id}/download/"):
        refused = client.get(url)
        assert refused.status_code == 429, url
        assert refused.json()["error"].startswith("Too many downloads: the limit is 2 every")
        assert int(refused["Retry-After"]) <= 600
