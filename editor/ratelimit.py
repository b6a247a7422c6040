"""Rate limits for uploads, downloads and saved edits, counted per owner and per client address in
Django's cache.

Limits are "COUNT/PERIOD" strings from settings: per owner (browser) RATE_LIMIT_UPLOADS,
RATE_LIMIT_DOWNLOADS and RATE_LIMIT_EDITS, per client address (editor.client_address) the same
names ending in _PER_ADDRESS. ``30/10m`` allows 30 requests in each 10-minute window;
``off`` (or ``0``) turns a limit off. Every request counts against both its owner and its
address, so a script that drops its cookie (and so is a new owner each time) still meets the
address limit; a request without an owner counts against its address only, and counting never
creates an owner. Windows are fixed (aligned to the clock), so a burst across a boundary may
reach twice the count; that is the price of one cache counter per owner or address. With the
default in-memory cache each server process counts on its own; a shared cache (e.g. Redis)
makes the limits global.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable
from dataclasses import dataclass
from functools import wraps
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.core import checks
from django.core.cache import cache
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse, JsonResponse

from editor.client_address import request_address
from editor.ownership import current_owner, session_owner
from editor.progress import describe_duration
from editor.refusals import count_refusal

# What each limit counts: the settings that hold it per owner and per client address.
BUCKETS = {
    "uploads": "RATE_LIMIT_UPLOADS",
    "downloads": "RATE_LIMIT_DOWNLOADS",
    "edits": "RATE_LIMIT_EDITS",
}
PER_ADDRESS = {
    "uploads": "RATE_LIMIT_UPLOADS_PER_ADDRESS",
    "downloads": "RATE_LIMIT_DOWNLOADS_PER_ADDRESS",
    "edits": "RATE_LIMIT_EDITS_PER_ADDRESS",
}
# Each setting's system check id (stable: operators may silence one by id).
CHECK_IDS = {
    "RATE_LIMIT_UPLOADS": "editor.E001",
    "RATE_LIMIT_DOWNLOADS": "editor.E002",
    "RATE_LIMIT_UPLOADS_PER_ADDRESS": "editor.E003",
    "RATE_LIMIT_DOWNLOADS_PER_ADDRESS": "editor.E004",
    "RATE_LIMIT_EDITS": "editor.E005",
    "RATE_LIMIT_EDITS_PER_ADDRESS": "editor.E006",
}
# Who a limit is counted for: the browser (its owner id) or its network address.
OWNER, ADDRESS = "owner", "address"
SETTINGS = {OWNER: BUCKETS, ADDRESS: PER_ADDRESS}

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_RATE = re.compile(r"(\d+)\s*/\s*(\d*)\s*([smhd])")


@dataclass(frozen=True)
class Rate:
    count: int
    period_s: int

    def __str__(self) -> str:
        return f"{self.count} every {describe_duration(self.period_s)}"


def parse_rate(text: str, setting: str = "rate limit") -> Rate | None:
    """``"30/10m"`` → Rate(30, 600); ``"off"``, ``"0"`` or empty → None (no limit)."""
    text = text.strip().lower()
    if text in ("", "0", "off", "none"):
        return None
    match = _RATE.fullmatch(text)
    if match is None or int(match[1]) == 0:
        raise ImproperlyConfigured(
            f"{setting} must look like 30/10m (a count, then a period in s, m, h or d) "
            f"or be off; got {text!r}"
        )
    period = int(match[2] or 1) * _UNITS[match[3]]
    return Rate(int(match[1]), period)


def configured_rate(bucket: str, per: str = OWNER) -> Rate | None:
    setting = SETTINGS[per][bucket]
    return parse_rate(getattr(settings, setting), setting)


@dataclass(frozen=True)
class Window:
    """One counter's current window: what it has counted and when (Unix time) it ends."""

    used: int
    ends_at: int

    def wait_s(self) -> int:
        return max(1, math.ceil(self.ends_at - time.time()))


def _window(counter: str, rate: Rate) -> tuple[str, int]:
    window = int(time.time() // rate.period_s)
    return f"ratelimit:{counter}:{window}", (window + 1) * rate.period_s


def count_in_window(counter: str, rate: Rate, units: int = 1) -> Window:
    """Count ``units`` on ``counter`` in ``rate``'s current window (shared by every process
    that shares the cache)."""
    name, ends_at = _window(counter, rate)
    cache.add(name, 0, timeout=rate.period_s + 1)
    try:
        used = cache.incr(name, units)
    except ValueError:  # the window's counter expired between add and incr
        cache.set(name, units, timeout=rate.period_s + 1)
        used = units
    return Window(used, ends_at)


def peek_window(counter: str, rate: Rate) -> Window:
    """``counter``'s current window, counting nothing."""
    name, ends_at = _window(counter, rate)
    return Window(cache.get(name, 0), ends_at)


def retry_after(who: str, bucket: str, per: str = OWNER, units: int = 1) -> int | None:
    """Count ``units`` requests of ``who`` (an owner id, or with ``per=ADDRESS`` a client
    address) against ``bucket`` (a ZIP of 12 images is 12 downloads); None while within the
    limit, else the seconds until the window ends."""
    rate = configured_rate(bucket, per)
    if rate is None:
        return None
    window = count_in_window(f"{bucket}:{per}:{who}", rate, units)
    return None if window.used <= rate.count else window.wait_s()


def too_many_requests(bucket: str, wait_s: int, per: str = OWNER) -> JsonResponse:
    rate = configured_rate(bucket, per)
    if per == ADDRESS:
        message = (
            f"Too many {bucket} from this network address: the limit is {rate} per address, "
            "shared by everyone who connects from it. "
            f"Please try again in {describe_duration(wait_s)}."
        )
    else:
        message = (
            f"Too many {bucket}: the limit is {rate} per browser. "
            f"Please try again in {describe_duration(wait_s)}."
        )
    count_refusal(f"rate_limit_{bucket}_{per}")
    response = JsonResponse({"error": message}, status=HTTPStatus.TOO_MANY_REQUESTS)
    response["Retry-After"] = str(wait_s)
    return response


def limit(request: HttpRequest, bucket: str, units: int = 1) -> JsonResponse | None:
    """The 429 answer when the requesting owner or client address is over ``bucket``'s
    limit, else None. The request is counted, as ``units`` requests, against both (its address
    only when it has no owner yet: this creates no session)."""
    owner = current_owner(request)
    owner_wait = retry_after(owner, bucket, OWNER, units) if owner is not None else None
    address_wait = retry_after(request_address(request), bucket, ADDRESS, units)
    if owner_wait is not None:
        return too_many_requests(bucket, owner_wait, OWNER)
    if address_wait is not None:
        return too_many_requests(bucket, address_wait, ADDRESS)
    return None


def rate_limited(bucket: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., Any]]:
    """View decorator: every request to the view counts against ``bucket``."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            had_owner = session_owner(request.session) is not None
            refused = limit(request, bucket)
            if refused is not None:
                return refused
            response = view(request, *args, **kwargs)
            created = None if had_owner else session_owner(request.session)
            if created is not None:  # the first upload counts for the owner it created too
                retry_after(created, bucket, OWNER)
            return response

        return limited

    return decorate


def check_rate_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    """System check: a malformed limit stops ``manage.py`` commands and the server early."""
    errors = []
    for per, buckets in SETTINGS.items():
        for bucket, setting in buckets.items():
            try:
                configured_rate(bucket, per)
            except ImproperlyConfigured as exc:
                errors.append(checks.Error(str(exc), id=CHECK_IDS[setting]))
    return errors
