"""Per-owner rate limits for uploads and downloads, counted in Django's cache.

Limits are "COUNT/PERIOD" strings from settings (RATE_LIMIT_UPLOADS, RATE_LIMIT_DOWNLOADS):
``30/10m`` allows 30 requests in each 10-minute window; ``off`` (or ``0``) turns a limit off.
Windows are fixed (aligned to the clock), so a burst across a boundary may reach twice the
count; that is the price of one cache counter per owner. With the default in-memory cache
each server process counts on its own; a shared cache (e.g. Redis) makes the limit global.
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

from editor.ownership import request_owner
from editor.progress import describe_duration

# What each limit counts, with the setting that holds it.
BUCKETS = {"uploads": "RATE_LIMIT_UPLOADS", "downloads": "RATE_LIMIT_DOWNLOADS"}

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


def configured_rate(bucket: str) -> Rate | None:
    setting = BUCKETS[bucket]
    return parse_rate(getattr(settings, setting), setting)


def retry_after(owner: str, bucket: str) -> int | None:
    """Count one request of ``owner`` against ``bucket``; None while within the limit, else
    the seconds until the window ends."""
    rate = configured_rate(bucket)
    if rate is None:
        return None
    now = time.time()
    window = int(now // rate.period_s)
    key = f"ratelimit:{bucket}:{owner}:{window}"
    cache.add(key, 0, timeout=rate.period_s + 1)
    try:
        count = cache.incr(key)
    except ValueError:  # the window's counter expired between add and incr
        cache.set(key, 1, timeout=rate.period_s + 1)
        count = 1
    if count <= rate.count:
        return None
    return max(1, math.ceil((window + 1) * rate.period_s - now))


def too_many_requests(bucket: str, wait_s: int) -> JsonResponse:
    rate = configured_rate(bucket)
    message = (
        f"Too many {bucket}: the limit is {rate} per browser. "
        f"Please try again in {describe_duration(wait_s)}."
    )
    response = JsonResponse({"error": message}, status=HTTPStatus.TOO_MANY_REQUESTS)
    response["Retry-After"] = str(wait_s)
    return response


def limit(request: HttpRequest, bucket: str) -> JsonResponse | None:
    """The 429 answer when the requesting owner is over ``bucket``'s limit, else None (and
    the request is counted)."""
    wait_s = retry_after(request_owner(request), bucket)
    return None if wait_s is None else too_many_requests(bucket, wait_s)


def rate_limited(bucket: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., Any]]:
    """View decorator: every request to the view counts against ``bucket``."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @wraps(view)
        def limited(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            return limit(request, bucket) or view(request, *args, **kwargs)

        return limited

    return decorate


def check_rate_settings(**kwargs: Any) -> list[checks.CheckMessage]:
    """System check: a malformed limit stops ``manage.py`` commands and the server early."""
    errors = []
    for number, bucket in enumerate(BUCKETS, start=1):
        try:
            configured_rate(bucket)
        except ImproperlyConfigured as exc:
            errors.append(checks.Error(str(exc), id=f"editor.E00{number}"))
    return errors
