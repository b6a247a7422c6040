"""Hardening that only a real server can show: Daphne with its in-process worker, spoken to
over real sockets (no browser needed). Oversized bodies are refused while they stream, hostile
files leave the server and its worker healthy, the same file can be uploaded twice at once,
and the periodic purge runs inside the server process."""

from __future__ import annotations

import http.client
import json
import socket
import sqlite3
import threading
import time
import uuid
from http.cookies import SimpleCookie
from pathlib import Path
from urllib.parse import urlsplit

from editor.request_limits import MULTIPART_OVERHEAD
from tests.browser.conftest import UPLOAD_LIMIT_BYTES
from tests.fixtures import hostile

JOB_TIMEOUT_S = 180
# The server's MAX_UPLOAD_BYTES plus the multipart allowance.
BODY_LIMIT = UPLOAD_LIMIT_BYTES + MULTIPART_OVERHEAD


class Visitor:
    """A browser without a browser: keeps its cookies and sends the CSRF token."""

    def __init__(self, base_url: str) -> None:
        parts = urlsplit(base_url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.cookies: dict[str, str] = {}
        assert self.request("GET", "/")[0] == 200

    def request(
        self, method: str, path: str, body: bytes = b"", headers: dict[str, str] | None = None
    ) -> tuple[int, dict[str, str], bytes]:
        connection = http.client.HTTPConnection(self.host, self.port, timeout=60)
        sent = {"Cookie": "; ".join(f"{k}={v}" for k, v in self.cookies.items())}
        if method != "GET":
            sent["X-CSRFToken"] = self.cookies.get("csrftoken", "")
        connection.request(method, path, body=body, headers={**sent, **(headers or {})})
        response = connection.getresponse()
        for header in response.headers.get_all("Set-Cookie") or []:
            for name, morsel in SimpleCookie(header).items():
                self.cookies[name] = morsel.value
        data = response.read()
        connection.close()
        return response.status, dict(response.headers), data

    def upload(self, name: str, data: bytes) -> tuple[int, dict[str, object]]:
        boundary = uuid.uuid4().hex
        body = (
            (
                f"--{boundary}\r\n"
                f'Content-Disposition: form-data; name="file"; filename="{name}"\r\n'
                "Content-Type: application/octet-stream\r\n\r\n"
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        content_type = f"multipart/form-data; boundary={boundary}"
        status, _, answer = self.request("POST", "/upload/", body, {"Content-Type": content_type})
        return status, json.loads(answer)

    def wait_done(self, state: dict[str, object]) -> dict[str, object]:
        deadline = time.monotonic() + JOB_TIMEOUT_S
        while True:
            status, _, answer = self.request("GET", state["urls"]["status"])  # type: ignore[index]
            assert status == 200
            current = json.loads(answer)
            if current["finished"]:
                return current
            assert time.monotonic() < deadline, f"job {state['job']} did not finish"
            time.sleep(0.3)


def _raw_post_head(url: str, extra: str) -> tuple[socket.socket, bytes]:
    parts = urlsplit(url)
    sock = socket.create_connection((parts.hostname, parts.port), timeout=30)
    head = (
        "POST /upload/ HTTP/1.1\r\nHost: 127.0.0.1\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n" + extra + "\r\n"
    ).encode()
    return sock, head


def _read_response(sock: socket.socket) -> bytes:
    received = b""
    while b"\r\n\r\n" not in received or not received.rstrip().endswith(b"}"):
        chunk = sock.recv(65536)
        if not chunk:
            break
        received += chunk
    return received


def test_a_body_declared_too_large_is_refused_before_it_is_sent(server_url: str) -> None:
    sock, head = _raw_post_head(server_url, f"Content-Length: {40 * BODY_LIMIT}\r\n")
    with sock:
        sock.sendall(head + b"\0" * 65536)  # a sliver of the gigabyte it announced
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body == {"error": "The file is larger than the 4.0 MB limit."}


def test_a_chunked_body_is_cut_off_as_soon_as_it_passes_the_limit(server_url: str) -> None:
    sock, head = _raw_post_head(server_url, "Transfer-Encoding: chunked\r\n")
    chunk = b"\0" * (1 << 20)
    body_size = 8 * BODY_LIMIT
    sent = 0
    with sock:
        sock.sendall(head)
        try:
            while sent < body_size:
                sock.sendall(b"%x\r\n" % len(chunk) + chunk + b"\r\n")
                sent += len(chunk)
        except OSError:
            pass  # the server stopped reading and closed the connection
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")
    # Past the limit plus what the kernels' socket buffers hold, the connection was closed.
    assert sent < body_size, "the server read the whole oversized body"


def test_hostile_files_leave_the_server_and_its_worker_healthy(
    server_url: str, media_root: Path, eval_dir: Path
) -> None:
    visitor = Visitor(server_url)
    for case in sorted(hostile.UNREADABLE | hostile.TOO_LARGE):
        name, data = hostile.CASES[case]()
        if len(data) > UPLOAD_LIMIT_BYTES:
            continue  # cut off while it streams: the two tests above
        status, answer = visitor.upload(name, data)
        assert status in (400, 413, 415), (case, status)
        assert answer["error"], case
    photo = (eval_dir / "sod" / "images" / "ecssd_0235.jpg").read_bytes()
    status, state = visitor.upload("fox.jpg", photo)
    assert status == 201
    assert visitor.wait_done(state)["status"] == "done"
    folder = media_root / "images" / str(state["image"])
    assert (folder / "original.jpg").read_bytes() == photo
    _, headers, _ = visitor.request("GET", f"/images/{state['image']}/")
    assert "script-src 'self'" in headers["Content-Security-Policy"]
    assert headers["X-Content-Type-Options"] == "nosniff"


def test_the_same_file_uploaded_twice_at_once(
    server_url: str, media_root: Path, eval_dir: Path
) -> None:
    visitor = Visitor(server_url)
    # The first upload creates the visitor's owner (and session): the two at once share it.
    assert visitor.upload(*hostile.one_pixel())[0] == 201
    photo = (eval_dir / "sod" / "images" / "ecssd_0070.jpg").read_bytes()
    start = threading.Barrier(2)
    answers: list[tuple[int, dict[str, object]]] = []

    def send() -> None:
        start.wait()
        answers.append(visitor.upload("same.jpg", photo))

    threads = [threading.Thread(target=send) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    assert [status for status, _ in answers] == [201, 201]
    first, second = (state for _, state in answers)
    assert first["image"] != second["image"] and first["job"] != second["job"]
    for state in (first, second):
        assert visitor.wait_done(state)["status"] == "done"
        assert (media_root / "images" / str(state["image"]) / "original.jpg").read_bytes() == photo


def test_the_periodic_purge_runs_inside_the_server(
    server_url: str, server_env: dict[str, str], media_root: Path
) -> None:
    assert int(server_env["PURGE_INTERVAL_S"]) <= 2
    visitor = Visitor(server_url)
    status, state = visitor.upload(*hostile.one_pixel())
    assert status == 201
    folder = media_root / "images" / str(state["image"])
    assert folder.is_dir()
    database = Path(server_env["DATA_DIR"]) / "bgremover.sqlite3"
    with sqlite3.connect(database, timeout=30) as db:
        db.execute(
            "UPDATE editor_image SET expires_at = '2000-01-01 00:00:00' WHERE id = ?",
            (uuid.UUID(str(state["image"])).hex,),
        )
    deadline = time.monotonic() + 60
    while folder.exists():
        assert time.monotonic() < deadline, "the server never purged the expired image"
        time.sleep(0.2)
    assert visitor.request("GET", f"/images/{state['image']}/")[0] == 404
