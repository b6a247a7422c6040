"""A browser without a browser: HTTP/1.1 on loopback with a cookie jar and the CSRF token.

No answer (timeout, refused, reset) is a result, not an exception: the harnesses count them.
"""

from __future__ import annotations

import datetime
import email.utils
import json
import re
import time
import uuid
from dataclasses import dataclass, field
from http.client import HTTPConnection, HTTPException
from http.cookies import CookieError, SimpleCookie
from typing import Any
from urllib.parse import urlsplit

# The longest a well-behaved client waits when told to come back later.
MAX_RETRY_WAIT_S = 60.0


@dataclass
class Answer:
    """One HTTP exchange; ``status`` is None when no answer came (timeout, refused, reset)."""

    status: int | None
    elapsed_s: float
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""

    @property
    def retry_after_s(self) -> float | None:
        """Retry-After in seconds (delta-seconds or an HTTP date), None when absent."""
        value = self.headers.get("retry-after", "").strip()
        if not value:
            return None
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        now = datetime.datetime.now(datetime.UTC)
        return max(0.0, (when - now).total_seconds())

    def json(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def summary(self) -> dict[str, Any]:
        document = self.json() or {}
        return {
            "status": self.status,
            "elapsed_s": round(self.elapsed_s, 3),
            "retry_after": self.headers.get("retry-after"),
            "error": self.error or str(document.get("error", ""))[:300],
        }

    def retry_wait_s(self, floor_s: float = 0.0) -> float:
        """How long to wait before trying again: Retry-After (1 s when absent or 0), at least
        ``floor_s``, at most MAX_RETRY_WAIT_S."""
        return min(max(self.retry_after_s or 1.0, floor_s), MAX_RETRY_WAIT_S)


_META_TOKEN = re.compile(rb'name="csrf-token"\s+content="([^"]+)"')
_FORM_TOKEN = re.compile(rb'name="csrfmiddlewaretoken"\s+value="([^"]+)"')


class Client:
    """One browser without a browser: its own cookie jar, the CSRF token on every POST.

    A "cookie-less" stranger is a new Client for each GET / + upload sequence."""

    def __init__(self, base_url: str, timeout_s: float = 60.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout_s = timeout_s
        self.cookies: dict[str, str] = {}
        self.page_token = ""

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Answer:
        sent = {"Host": f"{self.host}:{self.port}"}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method != "GET":
            sent["X-CSRFToken"] = self.cookies.get("csrftoken") or self.page_token
        started = time.monotonic()
        connection = HTTPConnection(self.host, self.port, timeout=timeout_s or self.timeout_s)
        try:
            try:
                connection.request(method, path, body=body, headers={**sent, **(headers or {})})
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered (e.g. 413) and closed before the body was sent
            response = connection.getresponse()
            data = response.read()
        except (OSError, HTTPException) as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            return Answer(None, time.monotonic() - started, error=f"{reason}: {exc}"[:300])
        finally:
            connection.close()
        elapsed = time.monotonic() - started
        for header in response.headers.get_all("Set-Cookie") or []:
            try:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
            except CookieError:
                continue
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, elapsed, answer_headers, data)

    def open_page(self, timeout_s: float | None = None) -> Answer:
        """GET /: the CSRF cookie (and, on some versions, the session) for what follows."""
        answer = self.request("GET", "/", timeout_s=timeout_s)
        # Should the cookie not come, the page's token is the next best thing to send.
        match = _META_TOKEN.search(answer.body) or _FORM_TOKEN.search(answer.body)
        if match:
            self.page_token = match.group(1).decode()
        return answer

    def upload(self, name: str, data: bytes, timeout_s: float | None = None) -> Answer:
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self.request("POST", "/upload/", body, headers, timeout_s=timeout_s)

    def job_state(self, status_url: str, timeout_s: float = 30.0) -> dict[str, Any] | None:
        answer = self.request("GET", status_url, timeout_s=timeout_s)
        return answer.json() if answer.status == 200 else None
