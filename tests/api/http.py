"""A small HTTP client for the end-to-end API tests: multipart forms, JSON and plain requests
through urllib, answering (status, headers, body) for every status, errors included."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
import uuid
from dataclasses import dataclass
from email.message import Message


@dataclass
class Answer:
    status: int
    headers: Message
    body: bytes

    def json(self) -> dict:
        return json.loads(self.body)

    def error_code(self) -> str:
        return self.json()["errors"][0]["code"]


def request(
    url: str, body: bytes | None = None, headers: dict[str, str] | None = None, method: str = "GET"
) -> Answer:
    prepared = urllib.request.Request(url, data=body, headers=headers or {}, method=method)
    try:
        with urllib.request.urlopen(prepared, timeout=300) as response:
            return Answer(response.status, response.headers, response.read())
    except urllib.error.HTTPError as error:
        return Answer(error.code, error.headers, error.read())


def multipart(fields: dict[str, str], files: dict[str, tuple[str, bytes]]) -> tuple[bytes, str]:
    """A multipart/form-data body and its Content-Type."""
    boundary = uuid.uuid4().hex
    parts = []
    for name, value in fields.items():
        head = f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"\r\n\r\n'
        parts.append(f"{head}{value}\r\n".encode())
    for name, (filename, content) in files.items():
        head = (
            f'--{boundary}\r\nContent-Disposition: form-data; name="{name}"; '
            f'filename="{filename}"\r\nContent-Type: application/octet-stream\r\n\r\n'
        )
        parts.append(head.encode() + content + b"\r\n")
    parts.append(f"--{boundary}--\r\n".encode())
    return b"".join(parts), f"multipart/form-data; boundary={boundary}"


def post_form(
    url: str,
    fields: dict[str, str] | None = None,
    files: dict[str, tuple[str, bytes]] | None = None,
    headers: dict[str, str] | None = None,
) -> Answer:
    body, content_type = multipart(fields or {}, files or {})
    return request(url, body, {**(headers or {}), "Content-Type": content_type}, "POST")


def post_json(url: str, data: dict, headers: dict[str, str] | None = None) -> Answer:
    body = json.dumps(data).encode()
    return request(url, body, {**(headers or {}), "Content-Type": "application/json"}, "POST")
