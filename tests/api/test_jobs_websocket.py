"""The API job websocket, /ws/api/jobs/<id>/: the key in the handshake's header, the job's
state first, then the browser socket's events as the API shows jobs; every event checked
again (key still active, still the owner); no Origin needed, but an allowed Host."""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator
from typing import Any

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator

from api.models import ApiJob, ApiKey, NewKey
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
from editor.results import delete_image
from tests.web.factories import make_job

pytestmark = pytest.mark.django_db(transaction=True)

HOST = "127.0.0.1:8000"
RUN = "run-1"
# Generous: the first connection in a test process imports the URLconf (and the engine).
CONNECT_TIMEOUT_S = 60


def api_socket(
    job_id: object,
    key: str | None,
    *,
    header: bytes = b"x-api-key",
    host: str = HOST,
    extra: list[tuple[bytes, bytes]] | None = None,
) -> WebsocketCommunicator:
    headers = [(b"host", host.encode()), *(extra or [])]
    if key is not None:
        value = f"Bearer {key}" if header == b"authorization" else key
        headers.append((header, value.encode()))
    socket = WebsocketCommunicator(application, f"/ws/api/jobs/{job_id}/", headers=headers)
    socket.scope["client"] = ("127.0.0.1", 50000)
    return socket


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def with_clean_layer() -> None:
        await get_channel_layer().flush()
        await scenario()

    async_to_sync(with_clean_layer)()


@pytest.fixture(autouse=True)
def socket_counters() -> Iterator[None]:
    owner_sockets.clear()
    address_sockets.clear()
    yield
    left = (owner_sockets.total(), address_sockets.total())
    owner_sockets.clear()
    address_sockets.clear()
    assert left == (0, 0), "sockets still counted after the test"


@pytest.fixture
def new_key() -> NewKey:
    return ApiKey.create("socket")


def api_job(key: ApiKey, **fields: Any) -> ApiJob:
    return ApiJob.objects.create(
        job=make_job(key.owner, **fields), key=key, site_url="http://127.0.0.1:8000"
    )


async def accepted(socket: WebsocketCommunicator) -> dict[str, Any]:
    connected, code = await socket.connect(timeout=CONNECT_TIMEOUT_S)
    assert connected, code
    return await socket.receive_json_from(timeout=10)


async def closed_with(socket: WebsocketCommunicator, timeout: float = 10) -> int:
    message = await socket.receive_output(timeout)
    assert message["type"] == "websocket.close", message
    return message.get("code", 1000)


async def refused_with(socket: WebsocketCommunicator) -> int:
    connected, code = await socket.connect(timeout=CONNECT_TIMEOUT_S)
    assert not connected
    return code


async def report(job_id: object, stage: str, fraction: float) -> None:
    """A worker's progress through the real reporter (Job row, then the channel group)."""
    reporter = ProgressReporter(await database_sync_to_async(Job.objects.get)(pk=job_id), token=RUN)
    await database_sync_to_async(reporter)(stage, fraction)


def test_the_key_sees_its_job_from_its_state_to_its_end(new_key: NewKey) -> None:
    job = api_job(
        new_key.key, run_token=RUN, status=Job.Status.RUNNING, stage="segmenting", percent=40
    )

    async def scenario() -> None:
        socket = api_socket(job.pk, new_key.text)
        first = await accepted(socket)
        assert (first["id"], first["status"], first["stage"], first["percent"]) == (
            str(job.pk),
            "running",
            "segmenting",
            40,
        )
        assert first["urls"]["self"] == f"http://{HOST}/api/v1/jobs/{job.pk}"
        assert first["urls"]["socket"] == f"ws://{HOST}/ws/api/jobs/{job.pk}/"
        await report(job.pk, "matting", 0.7)
        event = await socket.receive_json_from(timeout=5)
        assert (event["stage"], event["percent"]) == ("matting", 70)
        assert event["stage_label"] == "Matting hair and fine detail"
        reporter = ProgressReporter(
            await database_sync_to_async(Job.objects.get)(pk=job.pk), token=RUN
        )
        await database_sync_to_async(reporter.succeed)()
        done = await socket.receive_json_from(timeout=5)
        assert (done["status"], done["finished"]) == ("done", True)
        assert done["urls"]["result"] == f"http://{HOST}/api/v1/jobs/{job.pk}/result"
        assert await closed_with(socket) == CLOSE_NORMAL
        await socket.disconnect()

    run(scenario)


def test_a_bearer_header_works_too_and_a_finished_job_ends_at_once(new_key: NewKey) -> None:
    job = api_job(new_key.key, status=Job.Status.FAILED, error="The file is not an image.")

    async def scenario() -> None:
        socket = api_socket(job.pk, new_key.text, header=b"authorization")
        state = await accepted(socket)
        assert (state["status"], state["error"]) == ("failed", "The file is not an image.")
        assert await closed_with(socket) == CLOSE_NORMAL
        await socket.disconnect()

    run(scenario)


def test_no_key_a_wrong_key_or_a_revoked_key_is_refused(new_key: NewKey) -> None:
    job = api_job(new_key.key, status=Job.Status.RUNNING)
    revoked = ApiKey.create("revoked")
    revoked.key.revoke()

    async def scenario() -> None:
        for text in (None, "bgr_" + "x" * 40, new_key.text[:-1] + "?", revoked.text):
            assert await refused_with(api_socket(job.pk, text)) == CLOSE_POLICY_VIOLATION
        # The key in the URL is not read (URLs end up in logs).
        in_url = WebsocketCommunicator(
            application,
            f"/ws/api/jobs/{job.pk}/?key={new_key.text}",
            headers=[(b"host", HOST.encode())],
        )
        assert await refused_with(in_url) == CLOSE_POLICY_VIOLATION

    run(scenario)


def test_another_keys_job_a_browser_job_and_an_unknown_job_look_the_same(
    new_key: NewKey,
) -> None:
    other = ApiKey.create("other")
    theirs = api_job(other.key, status=Job.Status.RUNNING)
    browser = make_job("a-browser", status=Job.Status.RUNNING)

    async def scenario() -> None:
        for job_id in (theirs.pk, browser.pk, "00000000-0000-4000-8000-000000000000"):
            assert await refused_with(api_socket(job_id, new_key.text)) == CLOSE_POLICY_VIOLATION

    run(scenario)


def test_no_origin_is_needed_but_the_host_must_be_allowed(new_key: NewKey) -> None:
    job = api_job(new_key.key, status=Job.Status.RUNNING)

    async def scenario() -> None:
        foreign = api_socket(job.pk, new_key.text, host="evil.example")
        assert await refused_with(foreign) == CLOSE_POLICY_VIOLATION
        # A page elsewhere sends an Origin; with the key in a header it is still the key's.
        with_origin = api_socket(job.pk, new_key.text, extra=[(b"origin", b"http://x.example")])
        assert (await accepted(with_origin))["status"] == "running"
        await with_origin.disconnect()

    run(scenario)


def test_an_event_after_the_key_was_revoked_closes_the_socket(new_key: NewKey) -> None:
    job = api_job(new_key.key, run_token=RUN, status=Job.Status.RUNNING, stage="segmenting")

    async def scenario() -> None:
        socket = api_socket(job.pk, new_key.text)
        await accepted(socket)
        await database_sync_to_async(new_key.key.revoke)()
        await report(job.pk, "matting", 0.7)
        assert await closed_with(socket) == CLOSE_POLICY_VIOLATION
        await socket.disconnect()

    run(scenario)


def test_an_event_after_the_job_was_deleted_or_for_another_job_closes_the_socket(
    new_key: NewKey,
) -> None:
    job = api_job(new_key.key, status=Job.Status.RUNNING)
    second = api_job(new_key.key, status=Job.Status.RUNNING)

    async def scenario() -> None:
        socket = api_socket(job.pk, new_key.text)
        await accepted(socket)
        image = await database_sync_to_async(lambda: Job.objects.get(pk=job.pk).image)()
        await database_sync_to_async(delete_image)(image)
        state = {"job": str(job.pk), "status": "running", "finished": False}
        await get_channel_layer().group_send(
            job_group(job.pk), {"type": "job.state", "state": state}
        )
        assert await closed_with(socket) == CLOSE_POLICY_VIOLATION
        await socket.disconnect()

        other = api_socket(second.pk, new_key.text)
        await accepted(other)
        forged = {"job": str(job.pk), "status": "done", "finished": True}
        await get_channel_layer().group_send(
            job_group(second.pk), {"type": "job.state", "state": forged}
        )
        assert await closed_with(other) == CLOSE_POLICY_VIOLATION
        await other.disconnect()

    run(scenario)


def test_a_key_holds_only_so_many_sockets(new_key: NewKey, settings: Any) -> None:
    settings.WEBSOCKET_MAX_PER_OWNER = 2
    job = api_job(new_key.key, status=Job.Status.RUNNING)

    async def scenario() -> None:
        held = [api_socket(job.pk, new_key.text) for _ in range(2)]
        for socket in held:
            await accepted(socket)
        assert await refused_with(api_socket(job.pk, new_key.text)) == CLOSE_TRY_AGAIN_LATER
        assert owner_sockets.count(new_key.key.owner) == 2
        for socket in held:
            await socket.disconnect()

    run(scenario)


def test_browser_sockets_still_need_their_own_origin(new_key: NewKey) -> None:
    browser = make_job("a-browser", status=Job.Status.RUNNING)

    async def scenario() -> None:
        socket = WebsocketCommunicator(
            application,
            f"/ws/jobs/{browser.pk}/",
            headers=[(b"host", HOST.encode()), (b"x-api-key", new_key.text.encode())],
        )
        assert await refused_with(socket) == CLOSE_POLICY_VIOLATION

    run(scenario)
