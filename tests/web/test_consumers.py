"""The job websocket: owner only, current state first, then live events."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest
from asgiref.sync import async_to_sync
from channels.db import database_sync_to_async
from channels.layers import get_channel_layer
from channels.testing import WebsocketCommunicator
from django.conf import settings

from bgremover.asgi import application
from editor.consumers import CLOSE_POLICY_VIOLATION
from editor.models import Job
from editor.progress import ProgressReporter
from tests.web.factories import make_job, session_cookie

pytestmark = pytest.mark.django_db(transaction=True)

ORIGIN = (b"origin", b"http://127.0.0.1")


# Generous: the first connection in a test process imports the URLconf (and the engine).
CONNECT_TIMEOUT_S = 60


def communicator(job_id: object, cookie: str | None) -> WebsocketCommunicator:
    headers = [ORIGIN]
    if cookie is not None:
        headers.append((b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()))
    return WebsocketCommunicator(application, f"/ws/jobs/{job_id}/", headers=headers)


def run(scenario: Callable[[], Awaitable[None]]) -> None:
    async def with_clean_layer() -> None:
        await get_channel_layer().flush()
        await scenario()

    async_to_sync(with_clean_layer)()


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


def test_foreign_origin_is_refused() -> None:
    job = make_job("owner-a")
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        socket = WebsocketCommunicator(
            application,
            f"/ws/jobs/{job.id}/",
            headers=[
                (b"origin", b"http://evil.example"),
                (b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode()),
            ],
        )
        connected, _ = await socket.connect(timeout=CONNECT_TIMEOUT_S)
        assert not connected

    run(scenario)


def test_missing_origin_is_refused() -> None:
    job = make_job("owner-a")
    cookie = session_cookie("owner-a")

    async def scenario() -> None:
        socket = WebsocketCommunicator(
            application,
            f"/ws/jobs/{job.id}/",
            headers=[(b"cookie", f"{settings.SESSION_COOKIE_NAME}={cookie}".encode())],
        )
        connected, _ = await socket.connect(timeout=CONNECT_TIMEOUT_S)
        assert not connected

    run(scenario)


def test_late_subscriber_gets_current_state_first_then_events() -> None:
    job = make_job("owner-a", status=Job.Status.RUNNING, stage="segmenting", percent=40)
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
        reporter = ProgressReporter(await database_sync_to_async(Job.objects.get)(pk=job.pk))
        await database_sync_to_async(reporter)("matting", 0.7)
        event = await socket.receive_json_from(timeout=5)
        assert (event["stage"], event["percent"]) == ("matting", 70)
        assert event["stage_label"] == "Matting hair and fine detail"

        await database_sync_to_async(reporter.succeed)()
        done = await socket.receive_json_from(timeout=5)
        assert done["status"] == "done" and done["finished"] is True
        assert done["urls"]["thumb_cutout"].endswith("/thumb-cutout")
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
        await socket.disconnect()

    run(scenario)


def test_reporter_throttles_database_writes() -> None:
    job = make_job("owner-a", status=Job.Status.RUNNING, stage="segmenting", percent=10)
    reporter = ProgressReporter(job)
    reporter("segmenting", 0.12)  # same stage, +2 %: not written
    assert Job.objects.get(pk=job.pk).percent == 10
    reporter("segmenting", 0.16)  # +6 %: written
    assert Job.objects.get(pk=job.pk).percent == 16
    reporter("refining", 0.17)  # new stage: written at once
    assert Job.objects.get(pk=job.pk).stage == "refining"
    reporter("refining", 0.05)  # never backwards
    assert Job.objects.get(pk=job.pk).percent == 17
