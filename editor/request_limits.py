"""Refuse request bodies larger than any upload may be, while they arrive.

Daphne (the server ``make run`` and the tests use) stores a whole request body in a temporary
file before the application sees any of it, so a check in a view comes after a 10 GB upload
has filled the disk. ``BodyLimitedWebRequest`` checks in Daphne's own request object instead:
a Content-Length over the limit is answered 413 before a byte of the body is read, and a
chunked body is cut off as soon as it passes the limit. ``install`` makes Daphne use it; the
ASGI entry point calls it. Behind another server, set the same limit there (e.g. nginx's
``client_max_body_size``); the upload view checks Content-Length as well.
"""

from __future__ import annotations

import json
from typing import Any

from daphne import http_protocol
from django.conf import settings

from editor.forms import human_bytes

# Room for multipart boundaries and headers around the file itself.
MULTIPART_OVERHEAD = 64 * 1024


def max_request_bytes() -> int:
    """The largest body any request may have: one upload and its multipart wrapping."""
    return settings.MAX_UPLOAD_BYTES + MULTIPART_OVERHEAD


def too_large_message() -> str:
    return f"The file is larger than the {human_bytes(settings.MAX_UPLOAD_BYTES)} limit."


class BodyLimitedWebRequest(http_protocol.WebRequest):
    """Daphne's request, refusing an oversized body as it arrives (see the module doc)."""

    _received = 0
    _refused = False

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        # Twisted would parse each multipart body into memory once more (Daphne never reads
        # it) and answer a malformed one with a bare 400 before Django could explain it.
        self._parsePOSTFormSubmission = False

    def gotLength(self, length: int | None) -> None:  # noqa: N802 (Twisted's name)
        super().gotLength(length)
        if length is not None and length > max_request_bytes():
            self._refuse()

    def handleContentChunk(self, data: bytes) -> None:  # noqa: N802 (Twisted's name)
        if self._refused:
            return
        self._received += len(data)
        if self._received > max_request_bytes():
            self._refuse()
            return
        super().handleContentChunk(data)

    def process(self) -> Any:
        # Bytes already in the buffer may still complete the request: never run the app.
        if self._refused:
            return None
        return super().process()

    def _refuse(self) -> None:
        self._refused = True
        # The request line is parsed already; the API answers in remove.bg's error shape.
        path = getattr(self.channel, "_path", b"") or b""
        if path.startswith(b"/api/"):
            error = {"errors": [{"title": too_large_message(), "code": "file_too_large"}]}
        else:
            error = {"error": too_large_message()}
        body = json.dumps(error).encode()
        head = (
            "HTTP/1.1 413 Request Entity Too Large\r\n"
            "Content-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\n"
            "Cache-Control: no-store\r\n"
            "Connection: close\r\n\r\n"
        ).encode()
        self.channel.transport.write(head + body)
        self.channel.transport.loseConnection()


def install() -> None:
    """Make Daphne build every HTTP request as a BodyLimitedWebRequest (idempotent). Daphne's
    protocol factory looks the class up by this module-level name for each connection."""
    http_protocol.WebRequest = BodyLimitedWebRequest
