"""Websocket for one job's progress: owner only, current state first, then live events."""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.contrib.sessions.backends.base import SessionBase

from editor.models import Job
from editor.ownership import find_owned_job, session_owner
from editor.progress import JobState, job_group, job_state
from editor.retention import keep_alive

# RFC 6455 "policy violation": not your job (or no such job; the two look the same).
CLOSE_POLICY_VIOLATION = 1008


@database_sync_to_async
def _owned_job_state(session: SessionBase | None, job_id: str) -> JobState | None:
    # The session is read here, in a thread: server-side sessions load from the database.
    owner = session_owner(session)
    job: Job | None = find_owned_job(owner, job_id)
    if job is None or owner is None:
        return None
    keep_alive(owner)  # someone watching is still here (RETENTION_HOURS = 0)
    return job_state(job)


class JobProgressConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    async def connect(self) -> None:
        job_id = self.scope["url_route"]["kwargs"]["job_id"]
        session = self.scope.get("session")
        if await _owned_job_state(session, job_id) is None:
            await self.close(code=CLOSE_POLICY_VIOLATION)
            return
        # Join the group before reading the state we send, so no event falls in between.
        self.group = job_group(job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        state = await _owned_job_state(session, job_id)
        if state is not None:
            await self.send_json(state)

    async def disconnect(self, code: int) -> None:
        if self.group is not None:
            await self.channel_layer.group_discard(self.group, self.channel_name)

    async def receive_json(self, content: Any, **kwargs: Any) -> None:
        """The socket is one-way; anything a client sends is ignored."""

    async def job_state(self, event: dict[str, Any]) -> None:
        await self.send_json(event["state"])
