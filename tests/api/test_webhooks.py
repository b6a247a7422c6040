"""api.webhooks: signatures receivers can check, deliveries to real local servers (and none
to forbidden addresses), and retries queued with back-off in the real task queue."""

from __future__ import annotations

import json
import time
from dataclasses import replace
from datetime import timedelta
from http.server import BaseHTTPRequestHandler
from typing import Any

import pytest
from django.utils import timezone
from django_tasks_db.models import DBTaskResult

from api.addresses import parse_networks
from api.outbound import FetchError, FetchPolicy
from api.webhooks import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    attempt_delivery,
    check_webhook_url,
    deliver,
    deliver_webhook,
    enqueue_webhook,
    next_attempt_delay,
    sign,
    verify,
)
from editor.tasks import process_job
from tests.api.local_servers import (
    answer,
    nobody_connected,
    redirect,
    serve,
    silent_listener,
    trickle,
)

SECRET = "whsec_test_0123456789"
PAYLOAD = {"event": "job.finished", "job": {"id": "42", "status": "done"}}
LOOPBACK = FetchPolicy(
    allowed_networks=parse_networks(["127.0.0.0/8"]), timeout_s=2.0, read_timeout_s=1.0
)


def ok(h: BaseHTTPRequestHandler) -> None:
    answer(h, b'{"thanks": true}', content_type="application/json")


def test_a_signature_verifies_and_a_tampered_body_or_wrong_secret_does_not() -> None:
    body = b'{"event":"job.finished"}'
    now = 1_800_000_000
    signature = "sha256=" + sign(SECRET, now, body)
    assert verify(SECRET, now, body, signature, now=now)
    assert verify(SECRET, str(now), body, signature.removeprefix("sha256="), now=now + 299)
    assert not verify(SECRET, now, body + b" ", signature, now=now)
    assert not verify(SECRET, now + 1, body, signature, now=now)
    assert not verify("another secret", now, body, signature, now=now)
    # A replay after the tolerance fails although the signature is right.
    assert not verify(SECRET, now, body, signature, tolerance_s=300, now=now + 301)
    assert not verify(SECRET, "soon", body, signature, now=now)


def test_the_signature_is_hmac_sha256_of_timestamp_dot_body() -> None:
    # Pinned (computed by hand: HMAC-SHA256 of b"1.{}" under b"key") so that receivers' own
    # code, in any language, keeps matching.
    assert sign("key", 1, b"{}") == (
        "1ba6b8171186efc613e8bcc0cbdab2748f24984d7c5a84faa2637afa0e40d224"
    )


def test_a_delivery_posts_signed_json_the_receiver_can_verify() -> None:
    with serve({"/hook": ok}) as server:
        outcome = deliver(server.url("/hook?job=42"), PAYLOAD, SECRET, LOOPBACK)
    assert outcome.ok and outcome.status == 200 and outcome.error is None
    (seen,) = server.requests
    assert seen.method == "POST" and seen.path == "/hook?job=42"
    assert seen.headers["Content-Type"] == "application/json"
    assert json.loads(seen.body) == PAYLOAD
    stamp = int(seen.headers[TIMESTAMP_HEADER])
    assert abs(time.time() - stamp) < 5
    assert seen.headers[SIGNATURE_HEADER].startswith("sha256=")
    assert verify(SECRET, stamp, seen.body, seen.headers[SIGNATURE_HEADER])
    assert not verify(
        SECRET, stamp, seen.body.replace(b"done", b"gone"), seen.headers[SIGNATURE_HEADER]
    )


def test_a_receiver_answering_500_is_not_a_delivery() -> None:
    with serve({"/hook": lambda h: answer(h, b"oops", status=500)}) as server:
        outcome = deliver(server.url("/hook"), PAYLOAD, SECRET, LOOPBACK)
    assert (outcome.ok, outcome.status) == (False, 500)
    assert outcome.error == "The webhook answered HTTP 500."


def test_a_redirect_is_not_followed() -> None:
    with serve(
        {"/hook": lambda h: redirect(h, "/elsewhere", status=307), "/elsewhere": ok}
    ) as server:
        outcome = deliver(server.url("/hook"), PAYLOAD, SECRET, LOOPBACK)
        assert [s.path for s in server.requests] == ["/hook"]
    assert (outcome.ok, outcome.status) == (False, 307)
    assert "redirects are not followed" in (outcome.error or "")


def test_a_webhook_to_a_forbidden_address_is_refused_without_any_connection() -> None:
    with silent_listener() as (listener, port):
        rules = FetchPolicy(allowed_ports=frozenset({80, 443, port}))
        outcome = deliver(f"http://127.0.0.1:{port}/hook", PAYLOAD, SECRET, rules)
        assert nobody_connected(listener)
    assert (outcome.ok, outcome.status) == (False, None)
    assert "private or reserved network" in (outcome.error or "")


def test_a_slow_receiver_times_out_within_the_limit() -> None:
    def slow(h: BaseHTTPRequestHandler) -> None:
        trickle(h, b"HTTP/1.1 200 OK\r\n" + b"X: " + b"." * 100, every_s=0.05, for_s=3)

    with serve({"/hook": slow}) as server:
        start = time.monotonic()
        outcome = deliver(server.url("/hook"), PAYLOAD, SECRET, replace(LOOPBACK, timeout_s=0.4))
    assert time.monotonic() - start < 1.0
    assert not outcome.ok and "took longer than 0.4 s" in (outcome.error or "")


@pytest.mark.parametrize(
    ("url", "code"),
    [
        ("http://169.254.169.254/latest/meta-data/", "url_forbidden"),
        ("http://[::1]/hook", "url_forbidden"),
        ("http://2130706433/hook", "url_forbidden"),
        ("ftp://example.com/hook", "url_scheme"),
        ("https://user:pw@example.com/hook", "url_credentials"),
        ("https://example.com:8443/hook", "url_port"),
        ("not a url", "url_invalid"),
    ],
)
def test_bad_webhook_urls_are_refused_at_submission(url: str, code: str) -> None:
    with pytest.raises(FetchError) as caught:
        check_webhook_url(url, FetchPolicy())
    assert caught.value.code == code and caught.value.status == 400


def test_an_allowed_webhook_url_passes_the_submission_check() -> None:
    check_webhook_url("http://127.0.0.1:9/hook", LOOPBACK)


def test_the_back_off_schedule() -> None:
    delays = [next_attempt_delay(n) for n in range(1, 8)]
    assert delays == [
        timedelta(seconds=10),
        timedelta(minutes=1),
        timedelta(minutes=5),
        timedelta(minutes=30),
        timedelta(hours=2),
        timedelta(hours=2),
        timedelta(hours=2),
    ]


@pytest.mark.django_db
def test_a_failed_attempt_queues_the_next_after_its_back_off_without_the_secret() -> None:
    with serve({"/hook": lambda h: answer(h, b"down", status=503)}) as server:
        before = timezone.now()
        outcome = attempt_delivery(
            server.url("/hook"), PAYLOAD, 7, SECRET, 2, policy=LOOPBACK, max_attempts=6
        )
    assert not outcome.ok
    (queued,) = DBTaskResult.objects.all()
    assert queued.task_path == deliver_webhook.module_path
    assert queued.args_kwargs == {"args": [server.url("/hook"), PAYLOAD, 7, 3], "kwargs": {}}
    assert SECRET not in json.dumps(queued.args_kwargs)
    wait = queued.run_after - before
    assert timedelta(seconds=59) < wait < timedelta(seconds=65)


@pytest.mark.django_db
def test_image_jobs_waiting_run_before_any_webhook_due(
    django_capture_on_commit_callbacks: Any,
) -> None:
    # A slow receiver keeps a worker for its whole time limit: never ahead of anyone's image.
    with serve({"/hook": lambda h: answer(h, b"down", status=503)}) as server:
        with django_capture_on_commit_callbacks(execute=True):
            enqueue_webhook(server.url("/hook"), PAYLOAD, 7)  # a first attempt
        attempt_delivery(  # fails: its retry is queued
            server.url("/hook"), PAYLOAD, 7, SECRET, 2, policy=LOOPBACK, max_attempts=6
        )
    DBTaskResult.objects.update(run_after=timezone.now() - timedelta(seconds=1))  # both due
    for n in range(3):
        process_job.enqueue(f"job-{n}")

    def next_claimed() -> str:
        task = DBTaskResult.objects.ready().get_locked()
        assert task is not None
        task.claim("test")
        return task.task_path

    order = [next_claimed() for _ in range(5)]
    assert order == [process_job.module_path] * 3 + [deliver_webhook.module_path] * 2


@pytest.mark.django_db
def test_the_last_attempt_and_a_delivered_one_queue_nothing() -> None:
    with serve({"/down": lambda h: answer(h, b"", status=500), "/hook": ok}) as server:
        last = attempt_delivery(
            server.url("/down"), PAYLOAD, 7, SECRET, 6, policy=LOOPBACK, max_attempts=6
        )
        delivered = attempt_delivery(
            server.url("/hook"), PAYLOAD, 7, SECRET, 1, policy=LOOPBACK, max_attempts=6
        )
    assert (last.ok, delivered.ok) == (False, True)
    assert not DBTaskResult.objects.exists()


def test_a_receiver_answering_endlessly_is_read_only_up_to_the_bound() -> None:
    def endless(h: BaseHTTPRequestHandler) -> None:
        h.send_response(200)
        h.send_header("Transfer-Encoding", "chunked")
        h.end_headers()
        chunk = b"4000\r\n" + b"e" * 0x4000 + b"\r\n"
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline:  # far more than the bound if anyone read it all
            h.wfile.write(chunk)

    with serve({"/hook": endless}) as server:
        start = time.monotonic()
        outcome = deliver(server.url("/hook"), PAYLOAD, SECRET, LOOPBACK)
    assert (outcome.ok, outcome.status) == (True, 200)
    assert time.monotonic() - start < 1.0


@pytest.fixture
def loopback_allowed(settings: object) -> None:
    settings.API_FETCH_ALLOWED_NETWORKS = ["127.0.0.0/8"]  # type: ignore[attr-defined]


@pytest.mark.django_db
@pytest.mark.usefixtures("loopback_allowed")
def test_the_task_signs_with_the_keys_webhook_secret() -> None:
    from api.models import ApiKey

    key = ApiKey.create("hooks").key
    with serve({"/hook": ok}) as server:
        result = deliver_webhook.call(server.url("/hook"), PAYLOAD, key.pk)
    assert result == {"ok": True, "status": 200, "error": None, "attempt": 1}
    (seen,) = server.requests
    stamp, signature = seen.headers[TIMESTAMP_HEADER], seen.headers[SIGNATURE_HEADER]
    assert verify(key.webhook_secret, stamp, seen.body, signature)
    assert not DBTaskResult.objects.exists()


@pytest.mark.django_db
@pytest.mark.usefixtures("loopback_allowed")
def test_the_task_requeues_a_failure_and_a_revoked_key_stops_the_retries() -> None:
    from api.models import ApiKey

    key = ApiKey.create("hooks").key
    with serve({"/hook": lambda h: answer(h, b"", status=502)}) as server:
        result = deliver_webhook.call(server.url("/hook"), PAYLOAD, key.pk)
        assert result["ok"] is False and result["status"] == 502
        (queued,) = DBTaskResult.objects.all()
        assert queued.args_kwargs["args"] == [server.url("/hook"), PAYLOAD, key.pk, 2]
        assert key.webhook_secret not in json.dumps(queued.args_kwargs)
        ApiKey.objects.filter(pk=key.pk).update(revoked_at=timezone.now())
        result = deliver_webhook.call(*queued.args_kwargs["args"])
        assert result["ok"] is False and result["error"] == "API key gone"
        assert len(server.requests) == 1
    assert DBTaskResult.objects.count() == 1
