"""The job websocket: owner only, current state first, then live events; same-origin
handshakes only; bounded per owner and per client address; closed when idle or finished."""

from __future__ import annotations

import asyncio
import threading
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings
from django.contrib.sessions.models import Session

from bgremover.asgi import application
from editor.consumers import (
    CLOSE_NORMAL,
    CLOSE_POLICY_VIOLATION,
    CLOSE_TRY_AGAIN_LATER,
    address_sockets,
    owner_sockets,
)
from editor.models import Job
from editor.progress import ProgressReporter, job_group
from editor.websocket_security import ConnectionCounter, origin_allowed, parse_origin
from tests.web.factories import make_job, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "127.0.0.1:8000"
ORIGIN = (b"origin", f"http://{HOST}".encode())
PEER = ("127.0.0.1", 50000)

# The run a test job was started by (a worker writes only for its own run).
RUN = "run-1"


# Generous: the first connection in a test process imports the URLconf (and the engine).
CONNECT_TIMEOUT_S = 60


def socket_to(
    path: str,
    headers: list[tuple[bytes, bytes]],
    *,
    client: tuple[str, int] | None = PEER,
    scheme: str | None = None,
) -> WebsocketCommunicator:
    """A handshake as a server makes it: Host header, peer address and (optionally) scheme.
    The communicator starts the application only when first used, so the scope may still be
    completed here."""
    if not any(name == b"host" for name, _ in headers):
        headers = [(b"host", HOST.encode()), *headers]
    socket = WebsocketCommunicator(application, path, headers=headers)
    if client is not None:
        socket.scope["client"] = client
    if scheme is not None:
        socket.scope["scheme"] = scheme
    return socket


def communicator(
    job_id: object,
    cookie: str | None,
    *,
    origin: bytes | None = ORIGIN[1],
    client: tuple[str, int] | None = PEER,
    extra: list[tuple[bytes, bytes]] | None = None,
    scheme: str | None = None,
) -> WebsocketCommunicator:
    headers = list(extra or [])
    if origin is not None:
        headers.append((b"origin", origin))
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return socket_to(f"/ws/jobs/{job_id}/", headers, client=client, scheme=scheme)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def with_clean_layer() -> None:
        await get_channel_layer().flush()
        await scenario()

    async_to_sync(with_clean_layer)()


@pytest.fixture(autouse=True)
def socket_counters() -> Iterator[None]:
    """Each test starts with no open sockets counted, and gives back every place it took."""
    owner_sockets.clear()
    address_sockets.clear()
    yield
    left = (owner_sockets.total(), address_sockets.total())
    owner_sockets.clear()
    address_sockets.clear()
    assert left == (0, 0), "sockets still counted after the test"


async def accepted(socket: WebsocketCommunicator) -> dict[str, Any]:
    """Connects, expects the handshake accepted, and returns the first state sent."""
    connected, code = await socket.connect(timeout=CONNECT_TIMEOUT_S)
    assert connected, code
    return await socket.receive_json_from(timeout=10)


def running_job(percent: int) -> Job:
    """owner-a's job, running under RUN in the segmenting stage at ``percent``."""
    return make_job(
        "owner-a", run_token=RUN, status=Job.Status.RUNNING, stage="segmenting", percent=percent
    )


async def reporter_of(job: Job) -> ProgressReporter:
    """The worker's progress helper for ``job`` (as it runs it, under RUN)."""
    return ProgressReporter(await database_sync_to_async(Job.objects.get)(pk=job.pk), token=RUN)


async def closed_with(socket: WebsocketCommunicator, timeout: float = 10) -> int:
    """Waits for the server to close the socket; returns the close code."""
    message = await socket.receive_output(timeout)
    assert message["type"] == "websocket.close", message
    return message.get("code", 1000)


def test_another_session_is_closed_with_policy_code() -> None:
    job = make_job("owner-a")
    stranger = session_cookie("owner-b")

    async def scenario() -> None:
        connected, code = await communicator(job.id, stranger).connect(timeout=CONNECT_TIMEOUT_S)
        assert not connected
        assert code == CLOSE_POLICY_VIOLATION

    run(scenario)


def test_no_session_is_closed_with_policy_code() -> None:
    job = make_job("owner-a")

    async def scenario() -> None:
        connected, code = await communicator(job.id, None).connect(timeout=CONNECT_TIMEOUT_S)
        assert (connected, code) == (False, CLOSE_POLICY_VIOLATION)

    run(scenario)


def test_unknown_job_looks_the_same_as_someone_elses() -> None:
    make_job("owner-a")
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        missing = "00000000-0000-4000-8000-000000000000"
        connected, code = await communicator(missing, cookie).connect(timeout=CONNECT_TIMEOUT_S)
        assert (connected, code) == (False, CLOSE_POLICY_VIOLATION)

    run(scenario)


# ---- Origin


def test_foreign_origin_is_refused() -> None:
    job = make_job("owner-a")
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        socket = communicator(job.id, cookie, origin=b"http://evil.example")
        connected, code = await socket.connect(timeout=CONNECT_TIMEOUT_S)
        assert (connected, code) == (False, CLOSE_POLICY_VIOLATION)

    run(scenario)


def test_missing_origin_is_refused() -> None:
    job = make_job("owner-a")
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        socket = communicator(job.id, cookie, origin=None)
        connected, _ = await socket.connect(timeout=CONNECT_TIMEOUT_S)
        assert not connected

    run(scenario)


@pytest.mark.parametrize(
    ("origin", "scheme", "allowed"),
    [
        (b"http://127.0.0.1:8000", None, True),  # the page's own origin, exactly
        (b"http://127.0.0.1:8001", None, False),  # same host, another port
        (b"http://127.0.0.1", None, False),  # same host, port 80
        (b"https://127.0.0.1:8000", None, False),  # an https page to a plain ws:// socket
        (b"https://127.0.0.1:8000", "wss", True),  # the same page over wss://
        (b"http://127.0.0.1:8000", "wss", False),  # a plain page to a wss:// socket
        (b"http://localhost:8000", None, False),  # another allowed host is another origin
    ],
)
def test_only_the_sites_own_origin_may_connect(
    origin: bytes, scheme: str | None, allowed: bool
) -> None:
    job = make_job("owner-a", status=Job.Status.RUNNING)
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        socket = communicator(job.id, cookie, origin=origin, scheme=scheme)
        connected, code = await socket.connect(timeout=CONNECT_TIMEOUT_S)
        assert connected is allowed, code
        await socket.disconnect()

    run(scenario)


def test_a_trusted_origin_may_connect_and_the_host_must_still_be_allowed(
    settings: Any,
) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com"]
    job = make_job("owner-a", status=Job.Status.RUNNING)
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        trusted = communicator(job.id, cookie, origin=b"https://app.example.com")
        assert (await trusted.connect(timeout=CONNECT_TIMEOUT_S))[0]
        await trusted.disconnect()
        other_port = communicator(job.id, cookie, origin=b"https://app.example.com:8443")
        assert not (await other_port.connect(timeout=CONNECT_TIMEOUT_S))[0]
        # The page's own origin, but a Host that is not in ALLOWED_HOSTS.
        foreign_host = communicator(
            job.id,
            cookie,
            origin=b"http://evil.example:8000",
            extra=[(b"host", b"evil.example:8000")],
        )
        assert not (await foreign_host.connect(timeout=CONNECT_TIMEOUT_S))[0]

    run(scenario)


def _scope(host: str | None, origin: str | None, **extra: Any) -> dict[str, Any]:
    headers = list(extra.pop("headers", []))
    if host is not None:
        headers.append((b"host", host.encode()))
    if origin is not None:
        headers.append((b"origin", origin.encode()))
    return {"type": "websocket", "headers": headers, **extra}


@pytest.mark.parametrize(
    ("host", "origin", "allowed"),
    [
        ("127.0.0.1", "http://127.0.0.1", True),
        ("127.0.0.1", "http://127.0.0.1:80", True),  # default port, spelt out
        ("127.0.0.1:80", "http://127.0.0.1", True),
        ("127.0.0.1:8080", "http://127.0.0.1", False),
        ("LOCALHOST:8000", "http://localhost:8000", True),  # host names ignore case
        ("[::1]:8000", "http://[::1]:8000", True),
        ("[::1]:8000", "http://[::1]:8001", False),
        ("127.0.0.1", "null", False),  # sandboxed frames, file: pages
        ("127.0.0.1", "http://user@127.0.0.1", False),
        ("127.0.0.1", "http://127.0.0.1/path", False),
        ("127.0.0.1", "ftp://127.0.0.1", False),
        ("127.0.0.1", "http://127.0.0.1:99999", False),
        ("127.0.0.1", "", False),
        ("127.0.0.1", None, False),
        (None, "http://127.0.0.1", False),  # no Host header
        ("evil.example", "http://evil.example", False),  # Host not in ALLOWED_HOSTS
        ("127.0.0.1/x", "http://127.0.0.1", False),
    ],
)
def test_origin_rule(host: str | None, origin: str | None, allowed: bool) -> None:
    assert origin_allowed(_scope(host, origin)) is allowed


def test_a_repeated_origin_or_host_header_is_refused() -> None:
    twice = [(b"origin", b"http://127.0.0.1"), (b"origin", b"http://127.0.0.1")]
    assert not origin_allowed(_scope("127.0.0.1", None, headers=twice))
    hosts = [(b"host", b"127.0.0.1"), (b"host", b"localhost")]
    assert not origin_allowed(_scope(None, "http://127.0.0.1", headers=hosts))


def test_the_https_switch_decides_when_the_server_does_not_say(settings: Any) -> None:
    # Daphne's websocket scope has no "scheme": plain unless HTTPS=1.
    assert origin_allowed(_scope("127.0.0.1", "http://127.0.0.1"))
    assert not origin_allowed(_scope("127.0.0.1", "https://127.0.0.1"))
    settings.HTTPS = True
    assert origin_allowed(_scope("127.0.0.1", "https://127.0.0.1"))
    assert not origin_allowed(_scope("127.0.0.1", "http://127.0.0.1"))


def test_the_forwarded_scheme_counts_only_when_its_header_is_trusted(settings: Any) -> None:
    forwarded = {"headers": [(b"x-forwarded-proto", b"https")], "scheme": "ws"}
    # Not trusted (the default): the header is the client's word, and is ignored.
    assert not origin_allowed(_scope("example.org", "https://example.org", **forwarded))
    settings.ALLOWED_HOSTS = ["example.org"]
    assert not origin_allowed(_scope("example.org", "https://example.org", **forwarded))
    settings.SECURE_PROXY_SSL_HEADER = ("HTTP_X_FORWARDED_PROTO", "https")
    assert origin_allowed(_scope("example.org", "https://example.org", **forwarded))
    assert not origin_allowed(_scope("example.org", "http://example.org", **forwarded))
    plain = {"headers": [(b"x-forwarded-proto", b"http")], "scheme": "wss"}
    assert origin_allowed(_scope("example.org", "http://example.org", **plain))


def test_trusted_origins_match_exactly(settings: Any) -> None:
    settings.CSRF_TRUSTED_ORIGINS = ["https://app.example.com", "http://other.example:8080"]
    for origin, allowed in [
        ("https://app.example.com", True),
        ("https://app.example.com:443", True),
        ("http://app.example.com", False),
        ("https://sub.app.example.com", False),
        ("http://other.example:8080", True),
        ("http://other.example", False),
    ]:
        assert origin_allowed(_scope("127.0.0.1", origin)) is allowed, origin


def test_origins_are_normalised() -> None:
    assert parse_origin("HTTPS://Example.COM") == ("https", "example.com", 443)
    assert parse_origin("http://[::1]:8000") == ("http", "::1", 8000)
    assert parse_origin("http://example.com:0x50") is None


def test_late_subscriber_gets_current_state_first_then_events() -> None:
    job = running_job(40)
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        socket = communicator(job.id, cookie)
        connected, _ = await socket.connect(timeout=CONNECT_TIMEOUT_S)
        assert connected
        first = await socket.receive_json_from(timeout=5)
        assert first["job"] == str(job.id)
        assert (first["status"], first["stage"], first["percent"]) == ("running", "segmenting", 40)
        assert first["finished"] is False

        # A worker reports progress through the real reporter (DB row + channel group).
        reporter = await reporter_of(job)
        await database_sync_to_async(reporter)("matting", 0.7)
        event = await socket.receive_json_from(timeout=5)
        assert (event["stage"], event["percent"]) == ("matting", 70)
        assert event["stage_label"] == "Matting hair and fine detail"

        await database_sync_to_async(reporter.succeed)()
        done = await socket.receive_json_from(timeout=5)
        assert done["status"] == "done" and done["finished"] is True
        assert done["urls"]["thumb_cutout"].endswith("/thumb-cutout")
        # Nothing more will come: the server closes the socket right after the final state,
        # and gives back its places at once.
        assert await closed_with(socket) == CLOSE_NORMAL
        assert owner_sockets.count("owner-a") == 0
        assert address_sockets.count("127.0.0.1") == 0
        await socket.disconnect()

    run(scenario)


def test_subscriber_after_the_end_still_learns_the_outcome() -> None:
    job = make_job("owner-a", status=Job.Status.FAILED, error="The file is not an image.")
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        socket = communicator(job.id, cookie)
        connected, _ = await socket.connect(timeout=CONNECT_TIMEOUT_S)
        assert connected
        state = await socket.receive_json_from(timeout=5)
        assert state["status"] == "failed"
        assert state["error"] == "The file is not an image."
        assert state["finished"] is True
        assert await closed_with(socket) == CLOSE_NORMAL
        await socket.disconnect()

    run(scenario)


# ---- Per-event ownership


def test_an_event_after_the_session_ended_is_not_forwarded() -> None:
    job = running_job(40)
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        socket = communicator(job.id, cookie)
        await accepted(socket)
        await database_sync_to_async(lambda: Session.objects.all().delete())()
        reporter = await reporter_of(job)
        await database_sync_to_async(reporter)("matting", 0.7)
        assert await closed_with(socket) == CLOSE_POLICY_VIOLATION
        await socket.disconnect()

    run(scenario)


def test_an_event_for_another_job_is_not_forwarded() -> None:
    job = running_job(40)
    other = make_job("owner-b", status=Job.Status.RUNNING, stage="matting", percent=80)
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        socket = communicator(job.id, cookie)
        await accepted(socket)
        # A state of someone else's job arriving in this job's group (a bug elsewhere).
        forged = {"job": str(other.id), "status": "running", "finished": False}
        await get_channel_layer().group_send(
            job_group(job.id), {"type": "job.state", "state": forged}
        )
        assert await closed_with(socket) == CLOSE_POLICY_VIOLATION
        await socket.disconnect()

    run(scenario)


# ---- Caps


def test_an_owner_may_hold_20_sockets_and_a_freed_one_lets_a_new_one_in() -> None:
    assert settings.WEBSOCKET_MAX_PER_OWNER == 20
    job = make_job("owner-a", status=Job.Status.RUNNING)
    cookie = session_cookie("owner-a")
    other_job = make_job("owner-b", status=Job.Status.RUNNING)
    other_cookie = session_cookie("owner-b")

    async def scenario() -> None:
        sockets = [communicator(job.id, cookie) for _ in range(20)]
        for socket in sockets:
            await accepted(socket)
        extra = communicator(job.id, cookie)
        assert await extra.connect(timeout=CONNECT_TIMEOUT_S) == (False, CLOSE_TRY_AGAIN_LATER)
        # Someone else, from the same address, is not affected.
        neighbour = communicator(other_job.id, other_cookie)
        await accepted(neighbour)
        # One closes: its place is free again.
        await sockets.pop().disconnect()
        again = communicator(job.id, cookie)
        await accepted(again)
        assert owner_sockets.count("owner-a") == 20
        for socket in [*sockets, again, neighbour]:
            await socket.disconnect()

    run(scenario)


def test_a_client_address_may_hold_only_so_many_sockets(settings: Any) -> None:
    assert settings.WEBSOCKET_MAX_PER_ADDRESS == 60
    settings.WEBSOCKET_MAX_PER_ADDRESS = 3
    owners = [f"owner-{n}" for n in range(5)]
    jobs = [make_job(owner, status=Job.Status.RUNNING) for owner in owners]
    cookies = [session_cookie(owner) for owner in owners]
    nat = ("203.0.113.7", 40000)

    async def scenario() -> None:
        # Sockets refused for not being yours hold no place.
        for _ in range(4):
            stranger = communicator(jobs[0].id, cookies[1], client=nat)
            assert await stranger.connect(timeout=CONNECT_TIMEOUT_S) == (
                False,
                CLOSE_POLICY_VIOLATION,
            )
        held = [communicator(jobs[n].id, cookies[n], client=nat) for n in range(3)]
        for socket in held:
            await accepted(socket)
        # A fourth owner behind the same address: refused, whoever they are.
        fourth = communicator(jobs[3].id, cookies[3], client=(nat[0], 40001))
        assert await fourth.connect(timeout=CONNECT_TIMEOUT_S) == (False, CLOSE_TRY_AGAIN_LATER)
        # Another address is not affected.
        elsewhere = communicator(jobs[3].id, cookies[3], client=("198.51.100.9", 40000))
        await accepted(elsewhere)
        await held.pop(0).disconnect()
        fifth = communicator(jobs[4].id, cookies[4], client=nat)
        await accepted(fifth)
        assert address_sockets.count("203.0.113.7") == 3
        for socket in [*held, elsewhere, fifth]:
            await socket.disconnect()

    run(scenario)


def test_ipv6_clients_count_by_their_64(settings: Any) -> None:
    settings.WEBSOCKET_MAX_PER_ADDRESS = 1
    job = make_job("owner-a", status=Job.Status.RUNNING)
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        first = communicator(job.id, cookie, client=("2001:db8:1:2::10", 40000))
        await accepted(first)
        same_64 = communicator(job.id, cookie, client=("2001:db8:1:2::99", 40000))
        assert await same_64.connect(timeout=CONNECT_TIMEOUT_S) == (False, CLOSE_TRY_AGAIN_LATER)
        await first.disconnect()

    run(scenario)


def test_the_counter_is_safe_across_threads() -> None:
    counter = ConnectionCounter()
    results: list[bool] = []

    def grab() -> None:
        for _ in range(200):
            results.append(counter.acquire("k", 1000))

    threads = [threading.Thread(target=grab) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert results.count(True) == 1000 and counter.count("k") == 1000
    for _ in range(1000):
        counter.release("k")
    assert counter.total() == 0


def test_whatever_a_client_sends_is_ignored_and_the_socket_goes_on() -> None:
    job = running_job(0)
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        socket = communicator(job.id, cookie)
        await accepted(socket)
        # Not JSON, nested past Python's recursion limit, and binary: none is read.
        for frame in ({"text_data": "{nope"}, {"text_data": "[" * 100_000}, {"bytes_data": b"\0"}):
            await socket.send_to(**frame)
        reporter = await reporter_of(job)
        await database_sync_to_async(reporter)("matting", 0.5)
        assert (await socket.receive_json_from(timeout=5))["percent"] == 50
        await socket.disconnect()

    run(scenario)


# ---- Idle timeout


def test_a_socket_the_server_has_sent_nothing_on_is_closed(settings: Any) -> None:
    settings.WEBSOCKET_IDLE_TIMEOUT_S = 0.5
    job = make_job("owner-a", status=Job.Status.QUEUED)
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        socket = communicator(job.id, cookie)
        await accepted(socket)
        opened = time.monotonic()

        async def chatter() -> None:
            # What the client sends keeps nothing open.
            while True:
                await socket.send_json_to({"ping": 1})
                await asyncio.sleep(0.05)

        pinger = asyncio.create_task(chatter())
        try:
            code = await closed_with(socket, timeout=10)
        finally:
            pinger.cancel()
        assert code == CLOSE_NORMAL
        assert time.monotonic() - opened >= 0.4
        assert owner_sockets.count("owner-a") == 0
        await socket.disconnect()

    run(scenario)


def test_events_keep_a_socket_open_past_the_idle_timeout(settings: Any) -> None:
    settings.WEBSOCKET_IDLE_TIMEOUT_S = 1.5
    job = running_job(0)
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        socket = communicator(job.id, cookie)
        await accepted(socket)
        reporter = await reporter_of(job)
        opened = time.monotonic()
        for step in range(1, 10):  # an event every 0.35 s: 3.15 s, twice the timeout
            await asyncio.sleep(0.35)
            await database_sync_to_async(reporter)(f"stage-{step}", step / 10)
            event = await socket.receive_json_from(timeout=5)
            assert event["percent"] == step * 10
        assert time.monotonic() - opened >= 3.0
        assert await closed_with(socket, timeout=10) == CLOSE_NORMAL
        await socket.disconnect()

    run(scenario)


def test_no_idle_timeout_when_it_is_0(settings: Any) -> None:
    settings.WEBSOCKET_IDLE_TIMEOUT_S = 0
    job = make_job("owner-a", status=Job.Status.QUEUED)
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        socket = communicator(job.id, cookie)
        await accepted(socket)
        assert await socket.receive_nothing(timeout=1.0)
        await socket.disconnect()

    run(scenario)


# ---- Progress reporter


def test_reporter_throttles_database_writes() -> None:
    job = running_job(10)
    reporter = ProgressReporter(job, token=RUN)
    reporter("segmenting", 0.12)  # same stage, +2 %: not written
    assert Job.objects.get(pk=job.pk).percent == 10
    reporter("segmenting", 0.16)  # +6 %: written
    assert Job.objects.get(pk=job.pk).percent == 16
    reporter("refining", 0.17)  # new stage: written at once
    assert Job.objects.get(pk=job.pk).stage == "refining"
    reporter("refining", 0.05)  # never backwards
    assert Job.objects.get(pk=job.pk).percent == 17
