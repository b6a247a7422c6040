"""Rate limits a script cannot dodge by dropping its cookie: every upload and download also
counts against the client's network address (the TCP peer, or a trusted proxy's header), and
counting never creates an owner."""

from __future__ import annotations

import uuid

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.core.files.base import ContentFile
from django.core.files.storage import default_storage
from django.test import Client

from editor.models import Image, Job, Result
from editor.ratelimit import check_rate_settings
from tests.fixtures import hostile
from tests.web.client import upload
from tests.web.factories import make_image, session_cookie

pytestmark = pytest.mark.django_db

TINY = hostile.one_pixel()[1]
SCRIPT = "203.0.113.7"


def test_a_script_dropping_its_cookie_meets_the_address_limit() -> None:
    answers = [upload(Client(REMOTE_ADDR=SCRIPT), "pixel.png", TINY) for _ in range(80)]
    statuses = [answer.status_code for answer in answers]
    assert statuses[:60] == [201] * 60  # the default: 60 every 10 minutes per address
    assert set(statuses[60:]) == {429}
    refused = answers[60]
    assert refused.json()["error"].startswith(
        "Too many uploads from this network address: the limit is 60 every 10 minutes per "
        "address, shared by everyone who connects from it. Please try again in"
    )
    assert 0 < int(refused["Retry-After"]) <= 600
    assert Image.objects.count() == 60
    # Refused requests created no owner: one session per accepted upload, no more.
    assert Session.objects.count() == 60
    # Another address is not held back.
    assert upload(Client(REMOTE_ADDR="198.51.100.9"), "pixel.png", TINY).status_code == 201


def test_the_per_browser_limit_still_holds_within_the_address_limit(settings: object) -> None:
    settings.RATE_LIMIT_UPLOADS = "2/1h"  # type: ignore[attr-defined]
    browser = Client(REMOTE_ADDR=SCRIPT)
    statuses = [upload(browser, "pixel.png", TINY).status_code for _ in range(3)]
    assert statuses == [201, 201, 429]
    refused = upload(browser, "pixel.png", TINY)
    assert refused.json()["error"].startswith("Too many uploads: the limit is 2 every 60")
    assert "per browser" in refused.json()["error"]
    # A new browser on the same address has its own allowance.
    assert upload(Client(REMOTE_ADDR=SCRIPT), "pixel.png", TINY).status_code == 201


def _forwarded(chain: str) -> Client:
    """A new cookie jar behind the proxy at 10.0.0.1, whose header carries ``chain``."""
    return Client(REMOTE_ADDR="10.0.0.1", HTTP_X_FORWARDED_FOR=chain)


def test_behind_a_trusted_proxy_the_last_forwarded_address_counts(settings: object) -> None:
    settings.CLIENT_ADDRESS_HEADER = "X-Forwarded-For"  # type: ignore[attr-defined]
    settings.RATE_LIMIT_UPLOADS_PER_ADDRESS = "2/1h"  # type: ignore[attr-defined]
    # The client writes whatever it likes in front; the proxy appends the real peer.
    first = [upload(_forwarded(f"1.1.1.{n}, {SCRIPT}"), "p.png", TINY) for n in range(3)]
    assert [answer.status_code for answer in first] == [201, 201, 429]
    assert "from this network address" in first[2].json()["error"]
    # Everyone else behind the same proxy is someone else.
    assert upload(_forwarded(f"{SCRIPT}, 192.0.2.44"), "p.png", TINY).status_code == 201


def test_without_a_trusted_proxy_the_header_is_ignored(settings: object) -> None:
    settings.CLIENT_ADDRESS_HEADER = ""  # type: ignore[attr-defined]
    settings.RATE_LIMIT_UPLOADS_PER_ADDRESS = "2/1h"  # type: ignore[attr-defined]
    answers = [upload(_forwarded(f"192.0.2.{n}"), "p.png", TINY) for n in range(3)]
    assert [answer.status_code for answer in answers] == [201, 201, 429]


def test_ipv6_clients_count_by_their_64(settings: object) -> None:
    settings.RATE_LIMIT_UPLOADS_PER_ADDRESS = "2/1h"  # type: ignore[attr-defined]
    addresses = ["2001:db8:1:2::1", "2001:db8:1:2:ffff::9", "2001:db8:1:2::abcd"]
    statuses = [upload(Client(REMOTE_ADDR=a), "p.png", TINY).status_code for a in addresses]
    assert statuses == [201, 201, 429]
    assert upload(Client(REMOTE_ADDR="2001:db8:1:3::1"), "p.png", TINY).status_code == 201


def _finished_job(owner: str) -> Job:
    """A done job with a stored cut-out file (enough for the file download URL)."""
    image = make_image(owner)
    job = Job.objects.create(image=image, status=Job.Status.DONE, stage="done", percent=100)
    name = default_storage.save(f"images/{image.id}/{job.id}/cutout.png", ContentFile(TINY))
    Result.objects.create(job=job, cutout=name, mask=name)
    return job


def _owner_client(owner: str, address: str = SCRIPT) -> Client:
    browser = Client(REMOTE_ADDR=address)
    browser.cookies[django_settings.SESSION_COOKIE_NAME] = session_cookie(owner)
    return browser


def test_downloads_count_per_address_across_browsers(settings: object) -> None:
    settings.RATE_LIMIT_DOWNLOADS_PER_ADDRESS = "3/10m"  # type: ignore[attr-defined]
    owners = [uuid.uuid4().hex for _ in range(4)]
    jobs = [_finished_job(owner) for owner in owners]
    answers = [
        _owner_client(owner).get(f"/jobs/{job.id}/files/cutout")
        for owner, job in zip(owners, jobs, strict=True)
    ]
    assert [answer.status_code for answer in answers] == [200, 200, 200, 429]
    refused = answers[3]
    assert refused.json()["error"].startswith("Too many downloads from this network address")
    assert 0 < int(refused["Retry-After"]) <= 600
    # The same owner from elsewhere (another address) may download.
    other = _owner_client(owners[3], "198.51.100.9")
    assert other.get(f"/jobs/{jobs[3].id}/files/cutout").status_code == 200


def test_the_default_download_limit_per_address_is_240_every_10_minutes() -> None:
    assert django_settings.RATE_LIMIT_DOWNLOADS_PER_ADDRESS == "240/10m"
    assert django_settings.RATE_LIMIT_UPLOADS_PER_ADDRESS == "60/10m"


def test_counting_a_request_without_an_owner_creates_no_session(settings: object) -> None:
    settings.RATE_LIMIT_UPLOADS_PER_ADDRESS = "1/1h"  # type: ignore[attr-defined]
    stranger = Client(REMOTE_ADDR=SCRIPT)
    image = make_image(uuid.uuid4().hex)
    for _ in range(3):  # counted (and then refused) without an owner
        answer = stranger.post(f"/images/{image.id}/rerun/", {"matting": "off"})
        assert answer.status_code in (404, 429)
        assert django_settings.SESSION_COOKIE_NAME not in answer.cookies
    assert answer.status_code == 429
    assert Session.objects.count() == 0
    assert Job.objects.count() == 0


@pytest.mark.parametrize(
    ("setting", "check_id"),
    [
        ("RATE_LIMIT_UPLOADS_PER_ADDRESS", "editor.E003"),
        ("RATE_LIMIT_DOWNLOADS_PER_ADDRESS", "editor.E004"),
    ],
)
def test_malformed_address_limits_are_refused_by_the_system_check(
    settings: object, setting: str, check_id: str
) -> None:
    assert check_rate_settings() == []
    setattr(settings, setting, "lots")
    errors = check_rate_settings()
    assert [error.id for error in errors] == [check_id]
    assert f"{setting} must look like 30/10m" in errors[0].msg
