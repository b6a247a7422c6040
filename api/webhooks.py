"""Job-completion webhooks: signed JSON POSTs through the SSRF-safe connection code of
api.outbound, retried with back-off by a django-tasks task.

Signing (receivers can mirror ``verify`` in their own scripts): the request carries

    X-Bgremover-Timestamp: <unix seconds when this attempt was signed>
    X-Bgremover-Signature: sha256=<hex HMAC-SHA256(secret, f"{timestamp}.".encode() + body)>

where ``body`` is the exact request body (bytes, as received). A receiver recomputes the HMAC
with its key's webhook secret, compares in constant time, and refuses timestamps more than a
few minutes from its clock (replays). Each retry is signed anew with a fresh timestamp.

The task's arguments (kept in the database) hold the key's id, never its secret.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import logging
import time
from dataclasses import dataclass, replace
from datetime import timedelta
from typing import Any

from django.db import transaction
from django.utils import timezone
from django_tasks import task

from api.outbound import FetchError, FetchPolicy, check_url, policy_from_settings, send

logger = logging.getLogger(__name__)

TIMESTAMP_HEADER = "X-Bgremover-Timestamp"
SIGNATURE_HEADER = "X-Bgremover-Signature"
# Delay before attempt n + 1 after attempt n failed; past the list, the last one.
BACKOFF = (
    timedelta(seconds=10),
    timedelta(minutes=1),
    timedelta(minutes=5),
    timedelta(minutes=30),
    timedelta(hours=2),
)
# Bytes of a receiver's answer read before it is dropped (only its status matters).
RESPONSE_LIMIT_BYTES = 64 * 1024
# Deliveries share the job workers: below every image job (0, resumed ones higher), so a
# receiver that answers slowly delays other webhooks, never anyone's images in the queue.
WEBHOOK_PRIORITY = -10


@dataclass(frozen=True)
class Delivery:
    """One attempt's outcome: ``status`` is the receiver's HTTP status (None when no answer
    came); ``ok`` for 2xx; ``error`` says why not."""

    status: int | None
    ok: bool
    error: str | None = None


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.".encode() + body`` under ``secret``."""
    message = f"{timestamp}.".encode() + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def verify(
    secret: str,
    timestamp: int | str,
    body: bytes,
    signature: str,
    tolerance_s: int = 300,
    now: float | None = None,
) -> bool:
    """For receivers: True when ``signature`` (the X-Bgremover-Signature header, with or
    without its ``sha256=`` prefix) matches ``body`` and ``timestamp`` (the
    X-Bgremover-Timestamp header) is within ``tolerance_s`` seconds of ``now``.

    The same in a receiver's own Python::

        expected = hmac.new(secret.encode(), f"{ts}.".encode() + body, "sha256").hexdigest()
        ok = hmac.compare_digest("sha256=" + expected, header) and abs(time.time() - ts) < 300
    """
    try:
        stamp = int(timestamp)
    except (TypeError, ValueError):
        return False
    current = time.time() if now is None else now
    if abs(current - stamp) > tolerance_s:
        return False
    given = signature.strip().removeprefix("sha256=")
    return hmac.compare_digest(sign(secret, stamp, body), given)


def signed_headers(secret: str, body: bytes, timestamp: int | None = None) -> dict[str, str]:
    stamp = int(time.time()) if timestamp is None else timestamp
    return {
        "Content-Type": "application/json",
        TIMESTAMP_HEADER: str(stamp),
        SIGNATURE_HEADER: f"sha256={sign(secret, stamp, body)}",
    }


def encode_payload(payload: dict[str, Any]) -> bytes:
    return json.dumps(payload, separators=(",", ":"), sort_keys=True).encode()


def webhook_policy(policy: FetchPolicy) -> FetchPolicy:
    """``policy`` for webhooks: no redirects, a bounded read of the answer."""
    return replace(policy, max_redirects=0, max_bytes=RESPONSE_LIMIT_BYTES)


def webhook_policy_from_settings() -> FetchPolicy:
    """The fetch policy's networks and ports, with API_WEBHOOK_TIMEOUT_S."""
    from django.conf import settings

    base = policy_from_settings()
    timeout = float(settings.API_WEBHOOK_TIMEOUT_S)
    return webhook_policy(replace(base, timeout_s=timeout, read_timeout_s=min(5.0, timeout)))


def check_webhook_url(url: str, policy: FetchPolicy) -> None:
    """Refuse a webhook URL when a job is submitted: FetchRefused (400) for a bad scheme,
    credentials, port or a host on a private network; FetchFailed (400) when the host cannot
    be resolved (504 when resolving takes past the time limit)."""
    try:
        check_url(url, policy)
    except TimeoutError:
        raise FetchError(
            "The webhook URL's host could not be resolved in time.", status=504, code="timeout"
        ) from None


def deliver(url: str, payload: dict[str, Any], secret: str, policy: FetchPolicy) -> Delivery:
    """POST ``payload`` as signed JSON to ``url`` once (redirects are not followed: a 3xx is
    a failed delivery). Never raises for network trouble: the outcome says what happened."""
    body = encode_payload(payload)
    try:
        status = send(
            url,
            method="POST",
            body=body,
            headers=signed_headers(secret, body),
            policy=webhook_policy(policy),
        )
    except FetchError as error:
        return Delivery(status=None, ok=False, error=error.message)
    if 200 <= status < 300:
        return Delivery(status=status, ok=True)
    if 300 <= status < 400:
        return Delivery(
            status, False, f"The webhook answered HTTP {status}; redirects are not followed."
        )
    return Delivery(status=status, ok=False, error=f"The webhook answered HTTP {status}.")


def next_attempt_delay(attempt: int) -> timedelta:
    """How long to wait after failed attempt number ``attempt`` (1-based) before the next."""
    return BACKOFF[min(max(attempt, 1), len(BACKOFF)) - 1]


def secret_for(api_key_id: int | str) -> str | None:
    """The webhook secret of API key ``api_key_id``; None when the key is gone or revoked
    (or has no secret), and then nothing is sent."""
    from api.models import ApiKey  # lazily: this module stays importable without the models

    key = ApiKey.objects.active().filter(pk=api_key_id).first()
    return (key.webhook_secret or None) if key is not None else None


def attempt_delivery(
    url: str,
    payload: dict[str, Any],
    api_key_id: int | str,
    secret: str,
    attempt: int,
    *,
    policy: FetchPolicy,
    max_attempts: int,
) -> Delivery:
    """Deliver once; on failure queue attempt ``attempt + 1`` after the back-off, unless this
    was the last allowed."""
    outcome = deliver(url, payload, secret, policy)
    if outcome.ok:
        logger.info("webhook delivered to %s (attempt %d, HTTP %s)", url, attempt, outcome.status)
        return outcome
    if attempt >= max_attempts:
        logger.error(
            "webhook to %s failed for good after %d attempts: %s", url, attempt, outcome.error
        )
        return outcome
    delay = next_attempt_delay(attempt)
    logger.warning(
        "webhook to %s failed (attempt %d of %d): %s; next try in %s",
        url,
        attempt,
        max_attempts,
        outcome.error,
        delay,
    )
    deliver_webhook.using(priority=WEBHOOK_PRIORITY, run_after=timezone.now() + delay).enqueue(
        url, payload, api_key_id, attempt + 1
    )
    return outcome


@task()
def deliver_webhook(
    url: str, payload: dict[str, Any], api_key_id: int | str, attempt: int = 1
) -> dict[str, Any]:
    """One delivery attempt of a job-completion webhook (queued by ``enqueue_webhook``;
    re-queues itself with back-off up to API_WEBHOOK_MAX_ATTEMPTS attempts)."""
    from django.conf import settings

    secret = secret_for(api_key_id)
    if secret is None:
        logger.warning(
            "webhook to %s dropped: API key %s is gone or has no secret", url, api_key_id
        )
        return {"ok": False, "status": None, "error": "API key gone", "attempt": attempt}
    outcome = attempt_delivery(
        url,
        payload,
        api_key_id,
        secret,
        attempt,
        policy=webhook_policy_from_settings(),
        max_attempts=settings.API_WEBHOOK_MAX_ATTEMPTS,
    )
    return {"ok": outcome.ok, "status": outcome.status, "error": outcome.error, "attempt": attempt}


def enqueue_webhook(url: str, payload: dict[str, Any], api_key_id: int | str) -> None:
    """Queue the first attempt once the surrounding transaction commits. ``payload`` must be
    JSON-serialisable."""
    first = deliver_webhook.using(priority=WEBHOOK_PRIORITY)
    transaction.on_commit(lambda: first.enqueue(url, payload, api_key_id, 1))
