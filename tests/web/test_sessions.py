"""Sessions only for people who upload: a visit, a 404 or a script without a cookie leaves no
session row, the first upload creates the owner, and the session lives as long as the
owner's newest image."""

from __future__ import annotations

import os
import subprocess
import sys
import uuid
from datetime import timedelta

import pytest
from django.conf import settings as django_settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.utils import timezone

from editor.models import Image
from tests.conftest import REPO_ROOT
from tests.fixtures import hostile
from tests.web.client import upload
from tests.web.factories import make_image

pytestmark = pytest.mark.django_db

TINY = hostile.one_pixel()[1]


def _has_owner(page: str) -> str:
    return page.split('data-has-owner="', 1)[1].split('"', 1)[0]


def test_visits_without_a_cookie_leave_no_session() -> None:
    theirs = make_image(uuid.uuid4().hex)
    job = uuid.uuid4()
    urls = [
        "/",
        "/gallery/",
        f"/images/{theirs.id}/",
        f"/images/{uuid.uuid4()}/",
        f"/images/{theirs.id}/files/original",
        f"/images/{theirs.id}/download/",
        f"/jobs/{job}/status/",
        f"/jobs/{job}/files/cutout",
        "/no-such-page/",
    ]
    visitor = Client()
    for url in urls:
        response = visitor.get(url)
        assert response.status_code in (200, 404), url
        assert django_settings.SESSION_COOKIE_NAME not in response.cookies, url
    answer = visitor.post("/images/delete-all/", HTTP_ACCEPT="application/json")
    assert answer.json() == {"deleted": []}
    assert Session.objects.count() == 0
    assert Image.objects.filter(pk=theirs.pk).exists()


def test_a_stale_cookie_does_not_create_a_session_either() -> None:
    visitor = Client()
    visitor.cookies[django_settings.SESSION_COOKIE_NAME] = "x" * 32
    assert "No images yet" in visitor.get("/gallery/").content.decode()
    assert visitor.get("/").status_code == 200
    assert Session.objects.count() == 0


def test_the_first_upload_creates_the_owner_and_the_page_knows() -> None:
    browser = Client()
    assert _has_owner(browser.get("/").content.decode()) == "false"
    response = upload(browser, "pixel.png", TINY)
    assert response.status_code == 201
    cookie = response.cookies[django_settings.SESSION_COOKIE_NAME]
    assert cookie["httponly"] is True and cookie["samesite"] == "Lax"
    assert Session.objects.count() == 1
    image = Image.objects.get(pk=response.json()["image"])
    assert image.owner == browser.session["owner"]
    assert _has_owner(browser.get("/").content.decode()) == "true"
    # The same browser's next uploads keep its owner and its one session.
    upload(browser, "pixel.png", TINY)
    assert Session.objects.count() == 1
    assert set(Image.objects.values_list("owner", flat=True)) == {image.owner}


def _expiry(browser: Client) -> timezone.datetime:
    key = browser.cookies[django_settings.SESSION_COOKIE_NAME].value
    return Session.objects.get(session_key=key).expire_date


def test_the_session_lasts_as_long_as_the_newest_image() -> None:
    assert django_settings.SESSION_COOKIE_AGE == django_settings.RETENTION_HOURS * 3600
    browser = Client()
    response = upload(browser, "pixel.png", TINY)
    image = Image.objects.get(pk=response.json()["image"])
    cookie = response.cookies[django_settings.SESSION_COOKIE_NAME]
    assert int(cookie["max-age"]) == django_settings.SESSION_COOKIE_AGE
    assert abs(_expiry(browser) - image.expires_at) < timedelta(seconds=5)

    # Each upload moves the session's expiry along with the new image's.
    Session.objects.update(expire_date=timezone.now() + timedelta(hours=1))
    second = upload(browser, "pixel.png", TINY)
    newest = Image.objects.get(pk=second.json()["image"])
    assert abs(_expiry(browser) - newest.expires_at) < timedelta(seconds=5)
    # A mere visit does not (and needs not) write the session.
    Session.objects.update(expire_date=timezone.now() + timedelta(hours=1))
    browser.get("/gallery/")
    assert _expiry(browser) < timezone.now() + timedelta(hours=2)


def test_with_zero_retention_the_session_follows_the_owners_activity(
    settings: object,
) -> None:
    settings.RETENTION_HOURS = 0  # type: ignore[attr-defined]
    settings.RETENTION_IDLE_MINUTES = 15  # type: ignore[attr-defined]
    settings.SESSION_COOKIE_AGE = 15 * 60  # type: ignore[attr-defined]  # what settings derive
    browser = Client()
    upload(browser, "pixel.png", TINY)
    assert abs(_expiry(browser) - timezone.now() - timedelta(minutes=15)) < timedelta(seconds=5)

    # Thirteen minutes later the owner comes back: images and session both move forward.
    nearly = timezone.now() + timedelta(minutes=2)
    Image.objects.update(expires_at=nearly)
    Session.objects.update(expire_date=nearly)
    assert browser.get("/gallery/").status_code == 200
    for expiry in (_expiry(browser), Image.objects.get().expires_at):
        assert abs(expiry - timezone.now() - timedelta(minutes=15)) < timedelta(seconds=5)


@pytest.mark.parametrize(
    ("env", "age"),
    [
        ({}, 24 * 3600),
        ({"RETENTION_HOURS": "48"}, 48 * 3600),
        ({"RETENTION_HOURS": "0", "RETENTION_IDLE_MINUTES": "15"}, 15 * 60),
        ({"RETENTION_HOURS": "0", "RETENTION_IDLE_MINUTES": "0"}, 60),
    ],
)
def test_the_session_age_setting_follows_retention(env: dict[str, str], age: int) -> None:
    base = {**os.environ, "ALLOW_DEV_SECRET_KEY": "1"}
    for name in ("RETENTION_HOURS", "RETENTION_IDLE_MINUTES"):
        base.pop(name, None)
    out = subprocess.run(
        [
            sys.executable,
            "-c",
            "from bgremover import settings; print(settings.SESSION_COOKIE_AGE)",
        ],
        env={**base, **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    assert out == str(age)
