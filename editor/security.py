"""The Content-Security-Policy every response carries (Django 5.2 has none built in), and
``Cache-Control: no-store`` on every response that is not a static file.

Pages load scripts and styles only from this server, as files: no inline scripts, event
handler attributes or ``style`` attributes (the ES modules set styles through the CSSOM, which
CSP allows). Django's own settings add the other headers (nosniff, Referrer-Policy, frame
denial, HSTS; see bgremover.settings).

Pages, owner files, downloads and JSON all belong to one owner and may be deleted at any
time: no browser or proxy keeps a copy, so a deleted image is gone from the browser too.
WhiteNoise answers static files before ``no_store_middleware`` (listed after it) runs, and
they keep their own caching headers.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from asgiref.sync import iscoroutinefunction
from django.core.exceptions import DisallowedHost
from django.http import HttpRequest, HttpResponse
from django.utils.decorators import sync_and_async_middleware

POLICY = (
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    # data: for browser-internal images (e.g. form controls); blob: for downloads made in
    # the page.
    "img-src 'self' data: blob:",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
)


def content_security_policy(request: HttpRequest) -> str:
    """The policy for ``request``: connections go to this host only, websockets included
    (older browsers do not count ws:/wss: as 'self')."""
    sources = ["'self'"]
    try:
        host = request.get_host()
    except DisallowedHost:
        host = ""
    if host:
        sources += [f"ws://{host}", f"wss://{host}"]
    return "; ".join((*POLICY, f"connect-src {' '.join(sources)}"))


@sync_and_async_middleware
def content_security_policy_middleware(
    get_response: Callable[[HttpRequest], Any],
) -> Callable[[HttpRequest], Any]:
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponse:
            response = await get_response(request)
            response.setdefault("Content-Security-Policy", content_security_policy(request))
            return response

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponse:
        response = get_response(request)
        response.setdefault("Content-Security-Policy", content_security_policy(request))
        return response

    return middleware


def _no_store(response: HttpResponse) -> HttpResponse:
    directives = {
        part.split("=", 1)[0].strip().lower()
        for part in response.get("Cache-Control", "").split(",")
    }
    if "no-store" not in directives:
        response["Cache-Control"] = "no-store"
    return response


@sync_and_async_middleware
def no_store_middleware(
    get_response: Callable[[HttpRequest], Any],
) -> Callable[[HttpRequest], Any]:
    """``Cache-Control: no-store`` unless the response already says no-store (then its own
    header, e.g. ``private, no-store``, is kept as it is)."""
    if iscoroutinefunction(get_response):

        async def async_middleware(request: HttpRequest) -> HttpResponse:
            return _no_store(await get_response(request))

        return async_middleware

    def middleware(request: HttpRequest) -> HttpResponse:
        return _no_store(get_response(request))

    return middleware
