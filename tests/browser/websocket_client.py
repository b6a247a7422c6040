"""A minimal blocking RFC 6455 websocket client for tests that need no browser: the
handshake (with the Origin and Cookie headers a browser would send), text messages in,
ping/pong and the closing handshake. Nothing else (no extensions, no subprotocols)."""

from __future__ import annotations

import base64
import hashlib
import json
import os
import socket
import struct
from collections.abc import Iterator
from typing import Any
from urllib.parse import urlsplit

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
OP_CONTINUATION, OP_TEXT, OP_BINARY, OP_CLOSE, OP_PING, OP_PONG = 0x0, 0x1, 0x2, 0x8, 0x9, 0xA


class HandshakeRefused(Exception):
    """The server answered the upgrade request with something other than 101."""

    def __init__(self, status_line: str) -> None:
        super().__init__(status_line)
        self.status_line = status_line


class WebSocket:
    """``WebSocket("ws://127.0.0.1:8000/ws/jobs/<id>/", origin=..., cookie=...)``; iterate
    ``json_messages()`` until the server closes; ``close_code`` then says how."""

    def __init__(self, url: str, origin: str, cookie: str = "", timeout_s: float = 30.0) -> None:
        parts = urlsplit(url)
        if parts.scheme != "ws" or parts.hostname is None:
            raise ValueError(f"only ws:// URLs: {url!r}")
        port = parts.port or 80
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        self.close_code: int | None = None
        self._buffer = b""
        self._sock = socket.create_connection((parts.hostname, port), timeout=timeout_s)
        key = base64.b64encode(os.urandom(16)).decode()
        headers = [
            f"GET {path} HTTP/1.1",
            f"Host: {parts.hostname}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
            f"Origin: {origin}",
        ]
        if cookie:
            headers.append(f"Cookie: {cookie}")
        self._sock.sendall(("\r\n".join(headers) + "\r\n\r\n").encode("latin-1"))
        while b"\r\n\r\n" not in self._buffer:
            self._fill()
        head, self._buffer = self._buffer.split(b"\r\n\r\n", 1)
        lines = head.decode("latin-1").split("\r\n")
        if lines[0].split(" ")[1:2] != ["101"]:
            self._sock.close()
            raise HandshakeRefused(lines[0])
        answer = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        expected = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest()).decode()
        if answer.get("sec-websocket-accept") != expected:
            self._sock.close()
            raise HandshakeRefused(f"bad Sec-WebSocket-Accept in {lines[0]}")

    def _fill(self) -> None:
        chunk = self._sock.recv(65536)
        if not chunk:
            raise ConnectionError("the server closed the connection")
        self._buffer += chunk

    def _take(self, count: int) -> bytes:
        while len(self._buffer) < count:
            self._fill()
        taken, self._buffer = self._buffer[:count], self._buffer[count:]
        return taken

    def _frame(self) -> tuple[bool, int, bytes]:
        first, second = self._take(2)
        fin, opcode = bool(first & 0x80), first & 0x0F
        masked, length = bool(second & 0x80), second & 0x7F
        if length == 126:
            (length,) = struct.unpack("!H", self._take(2))
        elif length == 127:
            (length,) = struct.unpack("!Q", self._take(8))
        mask = self._take(4) if masked else b""
        payload = self._take(length)
        if masked:  # servers must not mask, but unmask anyway
            payload = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        return fin, opcode, payload

    def _send(self, opcode: int, payload: bytes = b"") -> None:
        """One final frame, masked as clients must."""
        mask = os.urandom(4)
        length = len(payload)
        if length < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | length)
        elif length < 1 << 16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, length)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, length)
        masked = bytes(byte ^ mask[i % 4] for i, byte in enumerate(payload))
        self._sock.sendall(header + mask + masked)

    def messages(self) -> Iterator[str | bytes]:
        """Data messages as they arrive, until the server's close frame (answered, and its
        code kept in ``close_code``); socket.timeout if the server goes quiet."""
        parts: list[bytes] = []
        kind = OP_TEXT
        while self.close_code is None:
            fin, opcode, payload = self._frame()
            if opcode == OP_PING:
                self._send(OP_PONG, payload)
            elif opcode == OP_PONG:
                continue
            elif opcode == OP_CLOSE:
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                self._send(OP_CLOSE, payload[:2])
                self._sock.close()
            else:
                if opcode != OP_CONTINUATION:
                    kind, parts = opcode, []
                parts.append(payload)
                if fin:
                    data = b"".join(parts)
                    yield data.decode("utf-8") if kind == OP_TEXT else data

    def json_messages(self) -> Iterator[Any]:
        for message in self.messages():
            yield json.loads(message)

    def close(self, code: int = 1000) -> None:
        if self.close_code is None:
            try:
                self._send(OP_CLOSE, struct.pack("!H", code))
            except OSError:
                pass
        self._sock.close()

    def __enter__(self) -> WebSocket:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
