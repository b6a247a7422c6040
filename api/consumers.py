"""Websocket for one API job's progress: ``/ws/api/jobs/<id>/``, authenticated by API key.

The key goes in the handshake's ``X-Api-Key`` header (or ``Authorization: Bearer``), never in
the URL: URLs end up in access logs, proxies' logs and shell history. Browsers cannot set
headers on a websocket, so a page cannot open this socket with a key it does not hold, and no
cookie is used: the browser socket's same-origin check does not apply here (scripts send no
Origin), only the Host must be one of ALLOWED_HOSTS.

Otherwise it is the browser socket (editor.consumers.JobProgressConsumer), whose caps, idle
timeout and closing it shares: the job's current state first, then one message per progress
event, each the job as ``GET /api/v1/jobs/<id>`` shows it (api.job_data), read again from the
database for every event after checking that the key still exists, is not revoked and owns
the job (else the socket closes with 1008). The socket closes (1000) after the final state.
"""

from __future__ import annotations

from typing import Any

from channels.db import database_sync_to_async
from django.conf import settings

from api.auth import key_text
from api.job_data import job_data
from api.models import ApiJob, ApiKey
from editor.client_address import scope_address
from editor.consumers import (
    CLOSE_TRY_AGAIN_LATER,
    JobProgressConsumer,
    address_sockets,
    owner_sockets,
)
from editor.retention import keep_alive
from editor.websocket_security import CLOSE_POLICY_VIOLATION, site_origin


def handshake_headers(scope: dict[str, Any]) -> dict[str, str]:
    """The handshake's headers by lower-case name (a repeated header: its last value)."""
    return {
        name.decode("latin-1").lower(): value.decode("latin-1")
        for name, value in scope.get("headers") or ()
    }


def site_base(scope: dict[str, Any]) -> str | None:
    """``scheme://host`` the handshake addressed, or None when its Host is not allowed."""
    origin = site_origin(scope)
    if origin is None:
        return None
    return f"{origin[0]}://{handshake_headers(scope)['host']}"


def _job_of(key_id: int, job_id: str, base: str) -> dict[str, Any] | None:
    """The job as the API shows it, if key ``key_id`` is active and owns it; else None."""
    key = ApiKey.objects.active().filter(pk=key_id).first()
    if key is None:
        return None
    api_job = ApiJob.objects.of_key(key).filter(pk=job_id).first()
    return job_data(api_job, base) if api_job is not None else None


@database_sync_to_async
def _find(text: str | None, job_id: str, base: str) -> tuple[int, str, dict[str, Any]] | None:
    """(key id, owner, the job's state) when ``text`` is an active key owning the job."""
    key = ApiKey.objects.find(text) if text else None
    if key is None:
        return None
    state = _job_of(key.pk, job_id, base)
    if state is None:
        return None
    key.touch()
    keep_alive(key.owner)  # someone is still waiting for it (RETENTION_HOURS = 0)
    return key.pk, key.owner, state


@database_sync_to_async
def _current(key_id: int, job_id: str, base: str) -> dict[str, Any] | None:
    return _job_of(key_id, job_id, base)


class ApiJobProgressConsumer(JobProgressConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.key_id: int | None = None
        self.base = ""

    async def connect(self) -> None:
        self.job_id = str(self.scope["url_route"]["kwargs"]["job_id"])
        address = scope_address(self.scope)
        if not self._hold(address_sockets, address, settings.WEBSOCKET_MAX_PER_ADDRESS):
            await self._refuse(CLOSE_TRY_AGAIN_LATER)
            return
        base = site_base(self.scope)
        found = None
        if base is not None:
            text = key_text(handshake_headers(self.scope))
            found = await _find(text, self.job_id, base)
        if base is None or found is None:
            await self._refuse(CLOSE_POLICY_VIOLATION)
            return
        self.base = base
        self.key_id, self.owner, _ = found
        if not self._hold(owner_sockets, self.owner, settings.WEBSOCKET_MAX_PER_OWNER):
            await self._refuse(CLOSE_TRY_AGAIN_LATER)
            return
        await self._follow()
        state = await _current(self.key_id, self.job_id, self.base)
        if state is None:  # deleted or revoked meanwhile
            await self._close(CLOSE_POLICY_VIOLATION)
            return
        await self._send_state(state)

    async def job_state(self, event: dict[str, Any]) -> None:
        if self._closed or self.key_id is None:
            return
        # Checked per event: the event is this socket's job, the key is still active and
        # still owns it. What is sent is the job as the database has it now.
        state = None
        if str(event["state"].get("job")) == self.job_id:
            state = await _current(self.key_id, self.job_id, self.base)
        if state is None:
            await self._close(CLOSE_POLICY_VIOLATION)
            return
        await self._send_state(state)
