"""Hold a streamed response back while its client is not reading it.

Daphne's ``send`` hands each part of a response body to Twisted's write buffer and returns at
once, however little of it the client has read: a streamed response (the gallery's ZIP,
rendered one image at a time) would be rendered whole into the web process's memory for a
client that reads nothing. ``PacedResponses`` makes ``send`` wait, after each part, until the
connection's unsent bytes are below ``HIGH_WATER_BYTES``, so at most about one part more is
held; a client that takes nothing for ``stall_s`` seconds (settings.SLOW_CLIENT_TIMEOUT_S) is
disconnected. Under another ASGI server (which paces ``send`` itself) it does nothing.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from daphne.http_protocol import WebRequest

HIGH_WATER_BYTES = 4 * 1024 * 1024
POLL_S = 0.05

Scope = dict[str, Any]
Message = dict[str, Any]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Callable[[], Awaitable[Message]], Send], Awaitable[None]]


def _daphne_request(send: Send) -> WebRequest | None:
    """The Daphne request a ``send`` answers (Daphne binds it as the first argument)."""
    request = next(iter(getattr(send, "args", ())), None)
    return request if isinstance(request, WebRequest) else None


def unsent_bytes(request: WebRequest) -> int | None:
    """Bytes written to ``request``'s connection that the client has not taken yet; None when
    the connection is gone or is not a Twisted socket."""
    transport = getattr(request.channel, "transport", None)
    if transport is None or getattr(transport, "disconnected", True):
        return None
    try:
        return len(transport.dataBuffer) - transport.offset + transport._tempDataLen
    except AttributeError:
        return None


async def drained(request: WebRequest, high_water: int, stall_s: float) -> None:
    """Wait until ``request``'s unsent bytes are at most ``high_water``; abort the connection
    if they have not gone down for ``stall_s`` seconds."""
    loop = asyncio.get_running_loop()
    lowest, since = None, loop.time()
    while (pending := unsent_bytes(request)) is not None and pending > high_water:
        if lowest is None or pending < lowest:
            lowest, since = pending, loop.time()
        elif loop.time() - since > stall_s:
            request.channel.transport.abortConnection()
            return
        await asyncio.sleep(POLL_S)


class PacedResponses:
    """ASGI middleware for HTTP: each part of a streamed body waits for the client (see the
    module doc)."""

    def __init__(self, app: App, stall_s: float, high_water: int = HIGH_WATER_BYTES) -> None:
        self.app, self.high_water, self.stall_s = app, high_water, stall_s

    async def __call__(
        self, scope: Scope, receive: Callable[[], Awaitable[Message]], send: Send
    ) -> None:
        request = _daphne_request(send) if scope["type"] == "http" else None
        if request is None:
            return await self.app(scope, receive, send)

        async def paced(message: Message) -> None:
            await send(message)
            if message["type"] == "http.response.body" and message.get("more_body"):
                await drained(request, self.high_water, self.stall_s)

        return await self.app(scope, receive, paced)
