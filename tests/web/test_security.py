"""Ownership and security headers: server-side owner sessions, 404 for everything that is not
yours, random ids, CSRF on every state-changing request, the Content-Security-Policy (and
markup that needs no exception from it), no-store caching, the HTTPS switch (secure
__Host- cookies, HSTS, the opt-in proxy scheme header) and safe download names."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from html.parser import HTMLParser
from pathlib import Path
from typing import Any

import pytest
from django.conf import settings
from django.contrib.sessions.models import Session
from django.http import HttpRequest, HttpResponse
from django.test import Client, RequestFactory
from django.urls import URLPattern, URLResolver, get_resolver

from api.models import ApiKey
from editor.models import Image, Job
from editor.ownership import OWNER_KEY
from editor.security import no_store_middleware
from tests.conftest import REPO_ROOT
from tests.web.client import named_file, upload, visit
from tests.web.factories import session_cookie

pytestmark = pytest.mark.django_db


# ---- Owner identity


def test_the_cookie_holds_a_random_session_key_and_the_owner_lives_on_the_server(
    client: Client, uploaded: Image
) -> None:
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
            # The API parses its ids itself, so a malformed one gets its 404 in remove.bg's
            # error shape (tests/api/test_jobs_api.py), not Django's HTML page.
            if name.endswith("_id") and not _is_api(pattern):
                assert type(converter).__name__ == "UUIDConverter", pattern.pattern
    malformed = client.get("/api/v1/jobs/1", HTTP_X_API_KEY=ApiKey.create("ids").text)
    assert malformed.status_code == 404 and malformed.json()["errors"]


# ---- CSRF


def _all_patterns(patterns: list | None = None) -> list[URLPattern]:
    found: list[URLPattern] = []
    for entry in patterns if patterns is not None else get_resolver().url_patterns:
        if isinstance(entry, URLResolver):
            found += _all_patterns(entry.url_patterns)
        else:
            found.append(entry)
    return found


def _is_api(pattern: URLPattern) -> bool:
    return pattern.callback.__module__.startswith("api.")


def test_only_the_key_authenticated_api_is_exempt_from_csrf(
    client: Client, uploaded: Image
) -> None:
    """CSRF protects what a browser's cookies authorise; the API's calls are authorised by
    a key in a header, which another site cannot make a browser send. A browser's session
    alone gets nothing there."""
    exempt = [p for p in _all_patterns() if getattr(p.callback, "csrf_exempt", False)]
    assert exempt and all(_is_api(p) for p in exempt), [p.name for p in exempt]
    job = uploaded.latest_job()
    assert job is not None
    for path in ("/api/v1.0/removebg", "/api/v1/jobs", f"/api/v1/jobs/{job.id}/result"):
        answer = client.post(path, {})  # with the uploader's session cookie, without a key
        assert answer.status_code == 403 and answer.json()["errors"][0]["code"] == "auth_failed"


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


# ---- Caching


def _no_store(response: Any) -> bool:
    directives = {part.strip().lower() for part in response.get("Cache-Control", "").split(",")}
    return "no-store" in directives


def test_nothing_but_static_files_may_be_cached(client: Client, uploaded: Image) -> None:
    job = uploaded.latest_job()
    responses = {
        "upload page": client.get("/"),
        "gallery": client.get("/gallery/"),
        "editor": client.get(f"/images/{uploaded.id}/"),
        "status JSON": client.get(f"/jobs/{job.id}/status/"),
        "owner file": client.get(f"/images/{uploaded.id}/files/original"),
        "404 page": client.get(f"/images/{uuid.uuid4()}/"),
        "404 file": client.get(f"/jobs/{job.id}/files/cutout"),
        "unknown URL": client.get("/no/such/page/"),
        "refused upload": client.post("/upload/", {}),
    }
    assert [r.status_code for r in responses.values()] == [
        200,
        200,
        200,
        200,
        200,
        404,
        404,
        404,
        400,
    ]
    for name, response in responses.items():
        assert _no_store(response), (name, response.get("Cache-Control"))
    # The owner file keeps what the view says (private), with no-store.
    assert responses["owner file"]["Cache-Control"] == "private, no-store"


def test_downloads_and_result_files_are_not_cached(client: Client, processed: Image) -> None:
    job = processed.latest_job()
    responses = {
        "cutout": client.get(f"/jobs/{job.id}/files/cutout"),
        "mask": client.get(f"/jobs/{job.id}/files/mask"),
        "thumbnail": client.get(f"/jobs/{job.id}/files/thumb-cutout"),
        "rendered": client.get(f"/images/{processed.id}/download/", {"output": "mask"}),
    }
    for name, response in responses.items():
        assert response.status_code == 200, name
        assert _no_store(response), (name, response.get("Cache-Control"))


def test_static_files_stay_cacheable(settings: Any) -> None:
    # The suite does not run collectstatic: WhiteNoise serves the source tree here.
    settings.WHITENOISE_USE_FINDERS = True
    settings.WHITENOISE_AUTOREFRESH = True
    response = Client().get("/static/js/jobs.js")
    assert response.status_code == 200
    assert not _no_store(response)
    assert "max-age=" in response["Cache-Control"]


def test_no_store_keeps_a_header_that_already_says_no_store() -> None:
    def respond_with(value: str | None) -> HttpResponse:
        def view(request: HttpRequest) -> HttpResponse:
            response = HttpResponse("x")
            if value is not None:
                response["Cache-Control"] = value
            return response

        return no_store_middleware(view)(RequestFactory().get("/"))

    assert respond_with(None)["Cache-Control"] == "no-store"
    assert respond_with("private, max-age=3600")["Cache-Control"] == "no-store"
    assert respond_with("public, max-age=60")["Cache-Control"] == "no-store"
    assert respond_with("private, no-store")["Cache-Control"] == "private, no-store"
    assert respond_with("No-Store")["Cache-Control"] == "No-Store"


# ---- HTTPS

HTTPS_SETTINGS = (
    "SESSION_COOKIE_NAME",
    "CSRF_COOKIE_NAME",
    "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE",
    "SESSION_COOKIE_DOMAIN",
    "CSRF_COOKIE_DOMAIN",
    "SESSION_COOKIE_PATH",
    "CSRF_COOKIE_PATH",
    "SECURE_HSTS_SECONDS",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS",
    "SECURE_HSTS_PRELOAD",
    "SECURE_PROXY_SSL_HEADER",
    "SECURE_SSL_REDIRECT",
)
HTTPS_ENV = (
    "HTTPS",
    "HSTS_SECONDS",
    "HSTS_INCLUDE_SUBDOMAINS",
    "HSTS_PRELOAD",
    "TRUST_PROXY_SCHEME_HEADER",
    "HTTPS_REDIRECT",
)


def _settings_under(env: dict[str, str]) -> dict[str, Any]:
    """The HTTPS-related settings as bgremover.settings computes them with ``env`` (settings
    are read once, at import: a fresh interpreter sees the environment)."""
    code = (
        "import json; from django.conf import global_settings as g; "
        "from bgremover import settings as s; "
        f"print(json.dumps({{n: getattr(s, n, getattr(g, n)) for n in {list(HTTPS_SETTINGS)!r}}}))"
    )
    base = {k: v for k, v in os.environ.items() if k not in HTTPS_ENV}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "ALLOW_DEV_SECRET_KEY": "1", **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode == 0, done.stderr
    values = json.loads(done.stdout)
    if values["SECURE_PROXY_SSL_HEADER"] is not None:
        values["SECURE_PROXY_SSL_HEADER"] = tuple(values["SECURE_PROXY_SSL_HEADER"])
    return values


def test_without_https_cookies_keep_plain_names_and_no_hsts() -> None:
    plain = _settings_under({})
    assert plain["SESSION_COOKIE_NAME"] == "sessionid"
    assert plain["CSRF_COOKIE_NAME"] == "csrftoken"
    assert plain["SECURE_HSTS_SECONDS"] == 0
    assert plain["SECURE_PROXY_SSL_HEADER"] is None
    assert plain["SECURE_SSL_REDIRECT"] is False
    # HSTS_SECONDS alone sends nothing over plain HTTP.
    assert _settings_under({"HSTS_SECONDS": "600"})["SECURE_HSTS_SECONDS"] == 0


def test_https_switch_sets_host_cookies_and_hsts() -> None:
    secure = _settings_under({"HTTPS": "1"})
    assert secure["SESSION_COOKIE_NAME"] == "__Host-sessionid"
    assert secure["CSRF_COOKIE_NAME"] == "__Host-csrftoken"
    # What the __Host- prefix requires: Secure, Path=/, no Domain.
    assert secure["SESSION_COOKIE_SECURE"] is True and secure["CSRF_COOKIE_SECURE"] is True
    assert secure["SESSION_COOKIE_PATH"] == "/" and secure["CSRF_COOKIE_PATH"] == "/"
    assert secure["SESSION_COOKIE_DOMAIN"] is None and secure["CSRF_COOKIE_DOMAIN"] is None
    assert secure["SECURE_HSTS_SECONDS"] == 31536000
    assert secure["SECURE_HSTS_INCLUDE_SUBDOMAINS"] is False
    assert secure["SECURE_HSTS_PRELOAD"] is False
    # Never trusted unless named.
    assert secure["SECURE_PROXY_SSL_HEADER"] is None
    assert secure["SECURE_SSL_REDIRECT"] is False


@pytest.mark.parametrize(
    ("env", "name", "expected"),
    [
        ({"HSTS_SECONDS": "0"}, "SECURE_HSTS_SECONDS", 0),
        ({"HSTS_SECONDS": "600"}, "SECURE_HSTS_SECONDS", 600),
        ({"HSTS_INCLUDE_SUBDOMAINS": "1"}, "SECURE_HSTS_INCLUDE_SUBDOMAINS", True),
        ({"HSTS_PRELOAD": "1"}, "SECURE_HSTS_PRELOAD", True),
        (
            {"TRUST_PROXY_SCHEME_HEADER": "X-Forwarded-Proto"},
            "SECURE_PROXY_SSL_HEADER",
            ("HTTP_X_FORWARDED_PROTO", "https"),
        ),
        ({"HTTPS_REDIRECT": "1"}, "SECURE_SSL_REDIRECT", True),
    ],
)
def test_https_options(env: dict[str, str], name: str, expected: object) -> None:
    assert _settings_under({"HTTPS": "1", **env})[name] == expected


@pytest.mark.parametrize(
    "env",
    [
        {"HTTPS_REDIRECT": "1"},  # a redirect to HTTPS on a site that is not
        {"HTTPS": "1", "TRUST_PROXY_SCHEME_HEADER": "X-Forwarded-Proto: https"},
        {"HTTPS": "1", "HSTS_SECONDS": "-1"},
    ],
)
def test_inconsistent_https_settings_stop_the_start(env: dict[str, str]) -> None:
    code = "from bgremover import settings"
    base = {k: v for k, v in os.environ.items() if k not in HTTPS_ENV}
    done = subprocess.run(
        [sys.executable, "-c", code],
        env={**base, "ALLOW_DEV_SECRET_KEY": "1", **env},
        cwd=REPO_ROOT,
        capture_output=True,
        text=True,
    )
    assert done.returncode != 0 and "ImproperlyConfigured" in done.stderr


@pytest.fixture
def https_site(settings: Any) -> dict[str, Any]:
    """This test process configured as HTTPS=1 TRUST_PROXY_SCHEME_HEADER=X-Forwarded-Proto
    would configure it."""
    values = _settings_under({"HTTPS": "1", "TRUST_PROXY_SCHEME_HEADER": "X-Forwarded-Proto"})
    for name, value in values.items():
        setattr(settings, name, value)
    return values


def test_https_responses_carry_hsts_and_host_cookies(
    https_site: dict[str, Any], photo: bytes
) -> None:
    browser = Client()  # a new client: middleware reads its settings when it is built
    page = browser.get("/", secure=True)
    assert page["Strict-Transport-Security"] == "max-age=31536000"
    csrf = page.cookies["__Host-csrftoken"]
    assert csrf["secure"] is True and csrf["path"] == "/" and not csrf["domain"]
    uploaded = upload(browser, "dog.jpg", photo, secure=True)
    assert uploaded.status_code == 201, uploaded.content
    session = browser.cookies["__Host-sessionid"]  # as set by the page or the upload
    assert session["secure"] is True and session["path"] == "/" and not session["domain"]
    assert session["httponly"] is True
    assert "sessionid" not in browser.cookies and "csrftoken" not in browser.cookies
    # The cookie works: the owner sees their image.
    image = uploaded.json()["image"]
    assert browser.get(f"/images/{image}/", secure=True).status_code == 200
    # Plain HTTP gets no HSTS (browsers ignore it there anyway).
    assert "Strict-Transport-Security" not in Client().get("/")


def test_the_proxy_scheme_header_counts_only_when_trusted(
    https_site: dict[str, Any], settings: Any
) -> None:
    forwarded = Client().get("/", HTTP_X_FORWARDED_PROTO="https")
    assert forwarded["Strict-Transport-Security"] == "max-age=31536000"
    settings.SECURE_PROXY_SSL_HEADER = None  # the default: a client's header is its own word
    spoofed = Client().get("/", HTTP_X_FORWARDED_PROTO="https")
    assert "Strict-Transport-Security" not in spoofed


def test_https_redirect_sends_plain_requests_to_https(settings: Any) -> None:
    for name, value in _settings_under({"HTTPS": "1", "HTTPS_REDIRECT": "1"}).items():
        setattr(settings, name, value)
    response = Client().get("/gallery/")
    assert response.status_code == 301
    assert response["Location"] == "https://testserver/gallery/"


def test_pages_never_read_the_cookies_by_name() -> None:
    """The __Host- names would break any script or template that looks a cookie up by name
    (the CSRF token comes from a meta tag: static/js/http.js)."""
    sources = [
        path
        for folder in ("static", "templates", "editor/static", "editor/templates")
        for pattern in ("*.js", "*.html")
        for path in (REPO_ROOT / folder).rglob(pattern)
    ]
    assert any(path.name == "http.js" for path in sources)
    assert any(path.name == "upload.js" for path in sources)
    for path in sources:
        text = Path(path).read_text(encoding="utf-8")
        for needle in ("document.cookie", "sessionid", "csrftoken", "__Host-"):
            assert needle not in text, (path, needle)


def test_secure_cookie_setting_reaches_the_session_cookie(settings: object, photo: bytes) -> None:
    settings.SESSION_COOKIE_SECURE = True  # type: ignore[attr-defined]
    answer = upload(Client(), "dog.jpg", photo)
    cookie = answer.cookies[settings.SESSION_COOKIE_NAME]  # type: ignore[attr-defined]
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
