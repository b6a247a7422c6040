"""Websocket for one job's progress: owner only, current state first, then live events.

Bounded under load, per server process: at most settings.WEBSOCKET_MAX_PER_ADDRESS open
sockets per client address (editor.client_address) and settings.WEBSOCKET_MAX_PER_OWNER per
owner; more are refused with 1013 "try again later" (the page then polls). The server closes
a socket once it has sent the job's final state, and one it has sent nothing on for
settings.WEBSOCKET_IDLE_TIMEOUT_S seconds (what a client sends is ignored, so it keeps
nothing open). Every event is checked again before it is forwarded: the session must still
exist and still own the job, else the socket closes with 1008.
"""

from __future__ import annotations

import asyncio
from importlib import import_module
from typing import Any

from channels.db import database_sync_to_async
from channels.generic.websocket import AsyncJsonWebsocketConsumer
from django.conf import settings
from django.contrib.sessions.backends.base import SessionBase

from editor.client_address import scope_address
from editor.models import Job
from editor.ownership import find_owned_job, session_owner
from editor.progress import JobState, job_group, job_state
from editor.retention import keep_alive
from editor.websocket_security import CLOSE_POLICY_VIOLATION, ConnectionCounter

# RFC 6455 codes. 1008 "policy violation": not your job (or no such job; the two look the
# same). 1013 "try again later": too many sockets open. 1000: done (job finished, or idle).
CLOSE_NORMAL = 1000
CLOSE_TRY_AGAIN_LATER = 1013

# Open sockets in this process, per owner and per client address.
owner_sockets = ConnectionCounter()
address_sockets = ConnectionCounter()


@database_sync_to_async
def _owned_job(session: SessionBase | None, job_id: str) -> tuple[str, str | None, JobState] | None:
    """(owner, session key, current state) when the session owns the job, else None."""
    # The session is read here, in a thread: server-side sessions load from the database.
    owner = session_owner(session)
    job: Job | None = find_owned_job(owner, job_id)
    if job is None or owner is None or session is None:
        return None
    keep_alive(owner)  # someone watching is still here (RETENTION_HOURS = 0)
    return owner, session.session_key, job_state(job)


@database_sync_to_async
def _still_owned(session_key: str | None, owner: str, job_id: str) -> bool:
    """Whether the session still exists (not ended on the server), still names ``owner``,
    and the job (and its image) still exists and is theirs."""
    if not session_key:
        return False
    session = import_module(settings.SESSION_ENGINE).SessionStore(session_key)
    return session_owner(session) == owner and find_owned_job(owner, job_id) is not None


class JobProgressConsumer(AsyncJsonWebsocketConsumer):
    group: str | None = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.job_id = ""
        self.owner: str | None = None
        self.session_key: str | None = None
        self._held: list[tuple[ConnectionCounter, str]] = []
        self._closed = False
        self._last_sent = 0.0
        self._idle_task: asyncio.Task[None] | None = None

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        # However this instance ends (disconnect, refusal, cancellation by the server), its
        # places in the counters are given back.
        try:
            await super().__call__(scope, receive, send)
        finally:
            self._stop_idle_watch()
            self._release()

    # ---- Connection

    async def connect(self) -> None:
        self.job_id = str(self.scope["url_route"]["kwargs"]["job_id"])
        # The address first: a flood of sockets costs no database query past the cap.
        address = scope_address(self.scope)
        if not self._hold(address_sockets, address, settings.WEBSOCKET_MAX_PER_ADDRESS):
            await self._refuse(CLOSE_TRY_AGAIN_LATER)
            return
        found = await _owned_job(self.scope.get("session"), self.job_id)
        if found is None:
            await self._refuse(CLOSE_POLICY_VIOLATION)
            return
        self.owner, self.session_key, _ = found
        if not self._hold(owner_sockets, self.owner, settings.WEBSOCKET_MAX_PER_OWNER):
            await self._refuse(CLOSE_TRY_AGAIN_LATER)
            return
        await self._follow()
        found = await _owned_job(self.scope.get("session"), self.job_id)
        if found is None:  # deleted meanwhile
            await self._close(CLOSE_POLICY_VIOLATION)
            return
        await self._send_state(found[2])

    async def _follow(self) -> None:
        """Join the job's group, accept, and start the idle timer. Joining comes before the
        caller reads the state it sends first, so no event falls in between."""
        self.group = job_group(self.job_id)
        await self.channel_layer.group_add(self.group, self.channel_name)
        await self.accept()
        self._last_sent = asyncio.get_running_loop().time()
        timeout = float(settings.WEBSOCKET_IDLE_TIMEOUT_S or 0)
        if timeout > 0:
            self._idle_task = asyncio.create_task(self._close_when_idle(timeout))

    async def disconnect(self, code: int) -> None:
        self._closed = True
        self._stop_idle_watch()
        await self._leave_group()
        self._release()

    async def receive(self, text_data: str | None = None, bytes_data: bytes | None = None) -> None:
        """The socket is one-way; anything a client sends is ignored unread (not parsed as
        JSON: a malformed or binary frame would end the consumer with a traceback), and keeps
        nothing open: only what the server sends counts against the idle timeout."""

    # ---- Events

    async def job_state(self, event: dict[str, Any]) -> None:
        if self._closed or self.owner is None:
            return
        state = event["state"]
        # Checked per event: the event is this socket's job, and its watcher still owns it.
        if str(state.get("job")) != self.job_id or not await _still_owned(
            self.session_key, self.owner, self.job_id
        ):
            await self._close(CLOSE_POLICY_VIOLATION)
            return
        await self._send_state(state)

    async def _send_state(self, state: JobState | dict[str, Any]) -> None:
        if self._closed:
            return
        await self.send_json(state)
        self._last_sent = asyncio.get_running_loop().time()
        if state.get("finished"):
            # Nothing more will happen to this job: the socket is done.
            await self._close(CLOSE_NORMAL)

    # ---- Closing

    async def _close_when_idle(self, timeout: float) -> None:
        loop = asyncio.get_running_loop()
        while not self._closed:
            remaining = self._last_sent + timeout - loop.time()
            if remaining <= 0:
                await self._close(CLOSE_NORMAL)
                return
            await asyncio.sleep(remaining)

    async def _close(self, code: int) -> None:
        """Close an accepted socket from the server's end, once."""
        if self._closed:
            return
        self._closed = True
        self._stop_idle_watch()
        await self._leave_group()
        self._release()
        await self.close(code=code)

    async def _refuse(self, code: int) -> None:
        """Refuse the handshake (before accept)."""
        self._closed = True
        self._release()
        await self.close(code=code)

    async def _leave_group(self) -> None:
        if self.group is not None:
            group, self.group = self.group, None
            await self.channel_layer.group_discard(group, self.channel_name)

    def _stop_idle_watch(self) -> None:
        task, self._idle_task = self._idle_task, None
        if task is not None and task is not asyncio.current_task():
            task.cancel()

    # ---- Counting

    def _hold(self, counter: ConnectionCounter, key: str, limit: int) -> bool:
        if not counter.acquire(key, int(limit or 0)):
            return False
        self._held.append((counter, key))
        return True

    def _release(self) -> None:
        held, self._held = self._held, []
        for counter, key in held:
            counter.release(key)
