"""Per-key rate limits and monthly quotas.

Rate: images a period per key (ApiKey.rate, else settings.API_RATE_LIMIT), counted in fixed
clock-aligned windows in Django's cache, as editor.ratelimit counts browsers; every answer
carries remove.bg's X-RateLimit-Limit/Remaining/Reset headers. Quota: credits a calendar month
(ApiKey.monthly_quota), checked before the work with the image's expected charge and charged
after it succeeds (concurrent calls of one key may together pass it by their own charges).
"""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus

from django.conf import settings

from api.errors import ApiError
from api.models import ApiKey
from editor.progress import describe_duration
from editor.ratelimit import Rate, count_in_window, parse_rate, peek_window


@dataclass(frozen=True)
class RateState:
    """Where a key stands in its current window; ``limit`` None: no limit."""

    limit: int | None
    remaining: int | None
    reset: int | None  # Unix time the window ends

    def headers(self) -> dict[str, str]:
        if self.limit is None:
            return {}
        return {
            "X-RateLimit-Limit": str(self.limit),
            "X-RateLimit-Remaining": str(self.remaining),
            "X-RateLimit-Reset": str(self.reset),
        }


def key_rate(key: ApiKey) -> Rate | None:
    if key.rate:
        return parse_rate(key.rate, f"the rate of API key {key.name!r}")
    return parse_rate(settings.API_RATE_LIMIT, "API_RATE_LIMIT")


def _counter(key: ApiKey) -> str:
    return f"api:{key.pk}"


def rate_state(key: ApiKey) -> RateState:
    """The key's standing now, counting nothing."""
    rate = key_rate(key)
    if rate is None:
        return RateState(None, None, None)
    window = peek_window(_counter(key), rate)
    return RateState(rate.count, max(0, rate.count - window.used), window.ends_at)


def take(key: ApiKey, images: int = 1) -> RateState:
    """Count ``images`` against the key's rate; raises a 429 ApiError past it (the refused
    images count too, so a client that hammers waits for the window to end)."""
    rate = key_rate(key)
    if rate is None:
        return RateState(None, None, None)
    window = count_in_window(_counter(key), rate, images)
    state = RateState(rate.count, max(0, rate.count - window.used), window.ends_at)
    if window.used > rate.count:
        wait = window.wait_s()
        raise ApiError(
            HTTPStatus.TOO_MANY_REQUESTS,
            f"Rate limit exceeded: this key may process {rate}. "
            f"Try again in {describe_duration(wait)}.",
            "rate_limit_exceeded",
            retry_after_s=wait,
            headers=state.headers(),
        )
    return state


def check_quota(key: ApiKey, charge: Decimal) -> None:
    """Raise 402 when ``charge`` more credits would pass the key's monthly quota."""
    left = key.credits_left()
    if left is not None and charge > left:
        raise ApiError(
            HTTPStatus.PAYMENT_REQUIRED,
            f"Insufficient credits: this image costs {charge:g} and the key has {left:g} of "
            f"its {key.monthly_quota:g} left this month.",
            "insufficient_credits",
        )
