"""Refusal counters (editor.refusals): each way a request is turned away is counted under its
reason, and shows in the scraped /metrics."""

from __future__ import annotations

import pytest
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from editor.heavy import heavy_operation
from editor.models import Job, Result
from editor.operations import REGISTRY
from editor.refusals import REFUSAL_REASONS
from editor.request_limits import MULTIPART_OVERHEAD
from tests.fixtures import hostile
from tests.web.client import named_file, upload, visit
from tests.web.factories import make_job, session_cookie
from tests.web.metrics_support import TOKEN, samples, scrape

TINY = hostile.one_pixel()[1]


def refusals() -> dict[str, float]:
    return {
        reason: REGISTRY.get_sample_value("bgremover_refusals_total", {"reason": reason}) or 0.0
        for reason in REFUSAL_REASONS
    }


def as_owner(client: Client, owner: str) -> None:
    from django.conf import settings

    client.cookies[settings.SESSION_COOKIE_NAME] = session_cookie(owner)


def refuse_by_owner_rate(client: Client, settings: object) -> object:
    settings.RATE_LIMIT_UPLOADS = "1/1h"  # type: ignore[attr-defined]
    as_owner(client, "owner-1")
    upload(client, "a.png", b"not an image")  # counted, refused as a file (not measured)
    before = refusals()
    return before, upload(client, "b.png", TINY)


def refuse_by_address_rate(client: Client, settings: object) -> object:
    settings.RATE_LIMIT_UPLOADS_PER_ADDRESS = "1/1h"  # type: ignore[attr-defined]
    upload(client, "a.png", b"not an image")
    before = refusals()
    return before, upload(client, "b.png", TINY)


def refuse_by_download_rate(client: Client, settings: object) -> object:
    settings.RATE_LIMIT_DOWNLOADS = "1/1h"  # type: ignore[attr-defined]
    as_owner(client, "owner-1")
    job = make_job("owner-1", status=Job.Status.DONE)
    cutout = default_storage.save(f"images/{job.image_id}/{job.id}/cutout.png", ContentFile(TINY))
    Result.objects.create(job=job, cutout=cutout)
    assert client.get(f"/jobs/{job.id}/files/cutout").status_code == 200  # counted
    before = refusals()
    return before, client.get(f"/jobs/{job.id}/files/cutout")


def refuse_for_owner_queue(client: Client, settings: object) -> object:
    settings.JOB_QUEUE_LIMIT_PER_OWNER = 1  # type: ignore[attr-defined]
    as_owner(client, "owner-1")
    make_job("owner-1")
    return refusals(), upload(client, "b.png", TINY)


def refuse_for_full_queue(client: Client, settings: object) -> object:
    settings.JOB_QUEUE_LIMIT = 1  # type: ignore[attr-defined]
    make_job("someone")
    return refusals(), upload(client, "b.png", TINY)


def refuse_for_disk(client: Client, settings: object) -> object:
    settings.DISK_BUDGET_BYTES = 10  # type: ignore[attr-defined]
    return refusals(), upload(client, "b.png", TINY)


def refuse_when_busy(client: Client, settings: object) -> object:
    settings.HEAVY_OPERATIONS = 1  # type: ignore[attr-defined]
    settings.HEAVY_WAIT_S = 0  # type: ignore[attr-defined]
    before = refusals()
    with heavy_operation(None):  # the only slot
        return before, upload(client, "b.png", TINY)


def refuse_unsupported(client: Client, settings: object) -> object:
    return refusals(), upload(client, "b.png", b"plain text, not an image")


def refuse_too_large(client: Client, settings: object) -> object:
    settings.MAX_UPLOAD_BYTES = 10  # type: ignore[attr-defined]
    return refusals(), upload(client, "b.png", TINY)


def refuse_too_large_a_request(client: Client, settings: object) -> object:
    settings.MAX_UPLOAD_BYTES = 10  # type: ignore[attr-defined]
    return refusals(), upload(client, "b.png", TINY + bytes(MULTIPART_OVERHEAD))


def refuse_too_many_pixels(client: Client, settings: object) -> object:
    settings.MAX_UPLOAD_PIXELS = 1000  # type: ignore[attr-defined]
    return refusals(), upload(client, "big.png", hostile.png_bomb()[1])


def refuse_malformed(client: Client, settings: object) -> object:
    return refusals(), client.post("/upload/", {"picture": named_file("b.png", TINY)})


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("refuse", "status", "reason"),
    [
        (refuse_by_owner_rate, 429, "rate_limit_uploads_owner"),
        (refuse_by_address_rate, 429, "rate_limit_uploads_address"),
        (refuse_by_download_rate, 429, "rate_limit_downloads_owner"),
        (refuse_for_owner_queue, 429, "queue_owner"),
        (refuse_for_full_queue, 503, "queue_full"),
        (refuse_for_disk, 507, "disk_budget"),
        (refuse_when_busy, 503, "server_busy"),
        (refuse_unsupported, 415, "unsupported_type"),
        (refuse_too_large, 413, "too_large"),
        (refuse_too_large_a_request, 413, "too_large"),
        (refuse_too_many_pixels, 413, "too_large"),
        (refuse_malformed, 400, "bad_file"),
    ],
)
def test_each_refusal_is_counted_under_its_reason(
    client: Client, settings: object, refuse: object, status: int, reason: str
) -> None:
    visit(client)
    before, response = refuse(client, settings)  # type: ignore[operator]
    assert response.status_code == status, response.content
    after = refusals()
    assert {
        name: after[name] - before[name] for name in REFUSAL_REASONS if after[name] != before[name]
    } == {reason: 1}


@pytest.mark.django_db
def test_a_refusal_shows_in_the_scraped_metrics(client: Client, settings: object) -> None:
    settings.METRICS_TOKEN = TOKEN  # type: ignore[attr-defined]
    settings.RATE_LIMIT_UPLOADS_PER_ADDRESS = "1/1h"  # type: ignore[attr-defined]
    key = (("reason", "rate_limit_uploads_address"),)
    before = samples(scrape(client)["bgremover_refusals"], "bgremover_refusals_total")[key]
    visit(client)
    assert upload(client, "a.png", b"not an image").status_code == 415
    assert upload(client, "b.png", TINY).status_code == 429
    after = samples(scrape(client)["bgremover_refusals"], "bgremover_refusals_total")[key]
    assert after == before + 1
