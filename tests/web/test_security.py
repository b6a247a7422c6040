"""Ownership and security headers: server-side owner sessions, 404 for everything that is not
yours, random ids, CSRF on every state-changing request, the Content-Security-Policy (and
markup that needs no exception from it), the HTTPS switch and safe download names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from html.parser import HTMLParser

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.test import Client
from django.urls import URLPattern, URLResolver, get_resolver

from editor.models import Image, Job
from editor.ownership import OWNER_KEY
from tests.conftest import REPO_ROOT
from tests.web.client import named_file, upload, visit
from tests.web.factories import session_cookie

pytestmark = pytest.mark.django_db


# ---- Owner identity


def test_the_cookie_holds_a_random_session_key_and_the_owner_lives_on_the_server(
    client: Client,
) -> None:
    visit(client)
    key = client.cookies[settings.SESSION_COOKIE_NAME].value
    owner = client.session[OWNER_KEY]
    assert uuid.UUID(hex=owner).version == 4
    assert owner not in key
    stored = Session.objects.get(session_key=key).get_decoded()
    assert stored[OWNER_KEY] == owner


def test_ending_the_session_on_the_server_revokes_access(client: Client, uploaded: Image) -> None:
    assert client.get(f"/images/{uploaded.id}/").status_code == 200
    Session.objects.all().delete()
    assert client.get(f"/images/{uploaded.id}/").status_code == 404
    assert uploaded.original_name not in client.get("/gallery/").content.decode()


@pytest.mark.parametrize("forged", ["owner-id", "signed-looking"])
def test_a_forged_cookie_is_a_stranger(client: Client, uploaded: Image, forged: str) -> None:
    value = uploaded.owner if forged == "owner-id" else f"{uploaded.owner}:1abcde:xyz"
    stranger = Client()
    stranger.cookies[settings.SESSION_COOKIE_NAME] = value
    assert stranger.get(f"/images/{uploaded.id}/").status_code == 404
    assert stranger.get(f"/jobs/{uploaded.latest_job().id}/status/").status_code == 404


def test_a_strangers_delete_all_leaves_other_owners_alone(client: Client, uploaded: Image) -> None:
    stranger = visit(Client())
    response = stranger.post("/images/delete-all/", HTTP_ACCEPT="application/json")
    assert response.json() == {"deleted": []}
    assert Image.objects.filter(pk=uploaded.id).exists()
    assert client.get(f"/images/{uploaded.id}/files/original").status_code == 200


def test_ids_are_uuid4_and_urls_take_nothing_else(client: Client, uploaded: Image) -> None:
    job = uploaded.latest_job()
    assert job is not None
    assert uploaded.id.version == 4 and job.id.version == 4
    assert client.get("/images/1/").status_code == 404
    assert client.get("/jobs/1/status/").status_code == 404
    for pattern in _all_patterns():
        for name, converter in pattern.pattern.converters.items():
            if name.endswith("_id"):
                assert type(converter).__name__ == "UUIDConverter", pattern.pattern


# ---- CSRF


def _all_patterns(patterns: list | None = None) -> list[URLPattern]:
    found: list[URLPattern] = []
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            found += _all_patterns(entry.url_patterns)
        else:
            found.append(entry)
    return found


def test_no_view_is_exempt_from_csrf() -> None:
    exempt = [p.name for p in _all_patterns() if getattr(p.callback, "csrf_exempt", False)]
    assert exempt == []


STATE_CHANGING = [
    ("post", "/upload/"),
    ("post", "/images/{image}/delete/"),
    ("delete", "/images/{image}/delete/"),
    ("post", "/images/delete-all/"),
    ("delete", "/images/delete-all/"),
    ("post", "/images/{image}/rerun/"),
    ("post", "/images/{image}/background/"),
]


@pytest.mark.parametrize(("method", "url"), STATE_CHANGING)
def test_every_state_changing_request_needs_the_csrf_token(
    uploaded: Image, photo: bytes, method: str, url: str
) -> None:
    owner = Client(enforce_csrf_checks=True)
    owner.cookies[settings.SESSION_COOKIE_NAME] = session_cookie(uploaded.owner)
    visit(owner)  # gets the CSRF cookie, but the requests below do not send the token
    assert owner.get(f"/images/{uploaded.id}/").status_code == 200
    data = {"file": named_file("dog.jpg", photo), "matting": "off"}
    response = getattr(owner, method)(url.format(image=uploaded.id), data)
    assert response.status_code == 403
    assert list(Image.objects.all()) == [uploaded]
    assert Job.objects.count() == 1
    assert not Image.objects.get(pk=uploaded.id).background


# ---- Headers


def _check_headers(response: object) -> None:
    policy = response["Content-Security-Policy"]  # type: ignore[index]
    directives = dict(part.strip().split(" ", 1) for part in policy.split(";"))
    assert directives["script-src"] == "'self'"
    assert directives["style-src"] == "'self'"
    assert directives["default-src"] == "'self'"
    assert directives["object-src"] == "'none'"
    assert directives["frame-ancestors"] == "'none'"
    assert "unsafe" not in policy
    assert response["X-Content-Type-Options"] == "nosniff"  # type: ignore[index]
    assert response["Referrer-Policy"] == "same-origin"  # type: ignore[index]
    assert response["X-Frame-Options"] == "DENY"  # type: ignore[index]


def test_every_kind_of_response_carries_the_security_headers(
    client: Client, uploaded: Image
) -> None:
    job = uploaded.latest_job()
    responses = [
        client.get("/"),
        client.get("/gallery/"),
        client.get(f"/images/{uploaded.id}/"),
        client.get(f"/jobs/{job.id}/status/"),
        client.get(f"/images/{uploaded.id}/files/original"),
        client.get(f"/images/{uuid.uuid4()}/"),
        client.get("/upload/"),
        client.post("/upload/", {}),
    ]
    assert [r.status_code for r in responses] == [200, 200, 200, 200, 200, 404, 405, 400]
    for response in responses:
        _check_headers(response)


def test_websockets_may_connect_to_this_host_only(client: Client) -> None:
    policy = client.get("/", HTTP_HOST="localhost").headers["Content-Security-Policy"]
    connect = next(d for d in policy.split("; ") if d.startswith("connect-src"))
    assert connect == "connect-src 'self' ws://localhost wss://localhost"


class _InlineCode(HTMLParser):
    """Collects what a strict CSP would block: inline scripts, handlers, style attributes."""

    def __init__(self) -> None:
        super().__init__()
        self.found: list[str] = []
        self.scripts = 0

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        if tag == "script":
            self.scripts += 1
            if "src" not in named and named.get("type") != "application/json":
                self.found.append("inline <script>")
        if tag == "style":
            self.found.append("<style> element")
        for name, value in attrs:
            if name.startswith("on") or name == "style":
                self.found.append(f"{tag} {name}={value!r}")
            if value and value.strip().lower().startswith("javascript:"):
                self.found.append(f"{tag} {name}={value!r}")


def test_pages_need_no_inline_script_or_style(
    client: Client, processed: Image, photo: bytes
) -> None:
    waiting = Image.objects.get(pk=upload(client, "waiting.jpg", photo).json()["image"])
    pages = ["/", "/gallery/", f"/images/{processed.id}/", f"/images/{waiting.id}/"]
    for url in pages:
        parser = _InlineCode()
        parser.feed(client.get(url).content.decode())
        assert parser.found == [], url
        assert parser.scripts >= 1, url


def test_https_switch_makes_cookies_secure() -> None:
    code = (
        "from bgremover import settings; "
        "print(settings.SESSION_COOKIE_SECURE, settings.CSRF_COOKIE_SECURE)"
    )
    base = {**os.environ, "ALLOW_DEV_SECRET_KEY": "1"}
    base.pop("HTTPS", None)
    for env, expected in [({}, "False False"), ({"HTTPS": "1"}, "True True")]:
        out = subprocess.run(
            [sys.executable, "-c", code],
            env={**base, **env},
            cwd=REPO_ROOT,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        assert out == expected, env


def test_secure_cookie_setting_reaches_the_session_cookie(settings: object) -> None:
    settings.SESSION_COOKIE_SECURE = True  # type: ignore[attr-defined]
    cookie = Client().get("/").cookies[settings.SESSION_COOKIE_NAME]  # type: ignore[attr-defined]
    assert cookie["secure"] is True


# ---- Download names


@pytest.mark.parametrize(
    ("uploaded_name", "stem"),
    [
        ("../../etc/passwd.jpg", "_.._etc_passwd"),
        ('say "cheese"; rm -rf.jpg', "say _cheese__ rm -rf"),
        ("a\x00b\r\nc.jpg", "a_b__c"),
        ("...", "image"),
        ("x" * 300 + ".jpg", "x" * 120),
    ],
)
def test_download_names_are_sanitised(uploaded_name: str, stem: str) -> None:
    assert Image(original_name=uploaded_name).stem == stem


def test_cutout_download_is_an_attachment_with_the_sanitised_name(
    client: Client, processed: Image
) -> None:
    Image.objects.filter(pk=processed.id).update(original_name='my "best";\\photo.jpg')
    job = processed.latest_job()
    response = client.get(f"/jobs/{job.id}/files/cutout")
    assert response["Content-Disposition"] == 'attachment; filename="my _best___photo-cutout.png"'
    rendered = client.get(f"/images/{processed.id}/download/", {"output": "mask"})
    assert rendered["Content-Disposition"] == 'attachment; filename="my _best___photo-mask.png"'
    assert json.loads(client.get(f"/jobs/{job.id}/status/").content)["status"] == "done"
