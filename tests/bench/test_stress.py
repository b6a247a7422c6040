"""The stress harness's building blocks, without a Django server: the hostile files are what
they claim to be, the memory sampler sees a grandchild's memory, the client keeps cookies,
sends the CSRF token and reads 429 + Retry-After, and the summary marks a missed target."""

from __future__ import annotations

import io
import json
import struct
import subprocess
import sys
import threading
import time
import zlib
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from PIL import Image

from bench.loopback import client, memory, servers
from bench.stress import files, jobs, report

ALLOCATION_MB = 200


def tiff_page_sizes(data: bytes, limit: int) -> list[tuple[int, int]]:
    """Walk a little-endian TIFF's IFD chain (at most ``limit`` IFDs, so a loop ends) and
    return each page's (width, height)."""
    assert data[:4] == b"II*\x00"
    (offset,) = struct.unpack_from("<I", data, 4)
    pages = []
    while offset and len(pages) < limit:
        (count,) = struct.unpack_from("<H", data, offset)
        tags = {}
        for index in range(count):
            tag, kind, _, value = struct.unpack_from("<HHII", data, offset + 2 + 12 * index)
            tags[tag] = value & 0xFFFF if kind == 3 else value
        pages.append((tags[256], tags[257]))
        (offset,) = struct.unpack_from("<I", data, offset + 2 + 12 * count)
    return pages


def test_the_tiff_has_60000_pages_of_one_pixel() -> None:
    data = files.many_page_tiff()
    pages = tiff_page_sizes(data, limit=100_000)
    assert len(pages) == 60_000
    assert set(pages) == {(1, 1)}
    assert 2_500_000 < len(data) < 4_000_000
    # Pillow reads it as a TIFF too, and a bounded seek reaches a late page.
    with Image.open(io.BytesIO(data)) as image:
        assert image.format == "TIFF" and image.size == (1, 1)
        image.seek(2000)
        assert image.tell() == 2000 and image.size == (1, 1)


def test_the_bomb_png_is_49_megapixels_in_a_small_file() -> None:
    data = files.gradient_png()
    assert len(data) < 1_000_000
    width, height = struct.unpack(">II", data[16:24])
    assert (width, height) == (7000, 7000)
    # The IDAT stream inflates to exactly one filter byte plus 3 × 7000 bytes per row.
    (length,) = struct.unpack(">I", data[33:37])
    assert data[37:41] == b"IDAT"
    inflater, total = zlib.decompressobj(), 0
    stream = data[41 : 41 + length]
    for start in range(0, len(stream), 65536):
        total += len(inflater.decompress(stream[start : start + 65536]))
    total += len(inflater.flush())
    assert total == 7000 * (1 + 3 * 7000)


def test_the_sampler_sees_a_grandchild_allocate() -> None:
    # The allocation happens two levels down (as a worker or matting helper of Daphne's
    # would); b"x" * n writes every page, so the memory is resident, not just reserved.
    grandchild = f"b = b'x' * ({ALLOCATION_MB} << 20); import time; time.sleep(3)"
    parent = f"import subprocess, sys; subprocess.run([sys.executable, '-c', {grandchild!r}])"
    child = subprocess.Popen([sys.executable, "-c", parent])
    try:
        sampler = memory.TreeSampler(child.pid, interval_s=0.05).start()
        child.wait(timeout=60)
        sampler.stop()
    finally:
        child.kill()
        child.wait()
    assert sampler.peak_bytes >= ALLOCATION_MB * memory.MB
    assert sampler.take_window_peak() == sampler.peak_bytes
    assert sampler.take_window_peak() == 0  # a new window, and the sampler has stopped
    assert sampler.peak_processes >= 2
    assert sampler.samples > 10


def test_the_sampler_stops_a_tree_over_its_limit() -> None:
    child = subprocess.Popen(
        [sys.executable, "-c", "b = b'x' * (150 << 20); input()"], stdin=subprocess.PIPE
    )
    hit: list[int] = []
    try:
        sampler = memory.TreeSampler(
            child.pid, limit_bytes=100 * memory.MB, on_limit=lambda total: hit.append(total)
        ).start()
        deadline = time.monotonic() + 30
        while not hit and time.monotonic() < deadline:
            time.sleep(0.05)
        sampler.stop()
    finally:
        child.kill()
        child.wait()
    assert sampler.limit_hit and len(hit) == 1 and hit[0] > 100 * memory.MB


class FakeServer(BaseHTTPRequestHandler):
    """GET / sets a CSRF cookie; POST /upload/ records what it got and answers 429."""

    received: list[dict[str, object]] = []

    def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
        self.send_response(200)
        self.send_header("Set-Cookie", "csrftoken=token123; Path=/; SameSite=Lax")
        self.send_header("Set-Cookie", "sessionid=s1; Path=/; HttpOnly")
        self.send_header("Content-Type", "text/html")
        self.end_headers()
        self.wfile.write(b"<html></html>")

    def do_POST(self) -> None:  # noqa: N802
        body = self.rfile.read(int(self.headers["Content-Length"]))
        FakeServer.received.append(
            {"token": self.headers["X-CSRFToken"], "cookie": self.headers["Cookie"], "body": body}
        )
        answer = json.dumps({"error": "Too many uploads."}).encode()
        self.send_response(429)
        self.send_header("Retry-After", "7")
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def fake_server() -> Iterator[str]:
    FakeServer.received = []
    server = ThreadingHTTPServer(("127.0.0.1", 0), FakeServer)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


def test_the_client_reads_429_and_retry_after(fake_server: str) -> None:
    client, answer = jobs.stranger_upload(fake_server, "a.jpg", b"JPEGDATA", timeout_s=10)
    assert answer.status == 429
    assert answer.retry_after_s == 7
    assert answer.summary()["error"] == "Too many uploads."
    assert client.cookies == {"csrftoken": "token123", "sessionid": "s1"}
    (sent,) = FakeServer.received
    assert sent["token"] == "token123"
    assert "sessionid=s1" in str(sent["cookie"])
    assert b'name="file"; filename="a.jpg"' in sent["body"]  # type: ignore[operator]
    assert b"\r\n\r\nJPEGDATA\r\n" in sent["body"]  # type: ignore[operator]


def test_no_answer_is_a_result_not_an_exception() -> None:
    port = servers.free_port()  # nobody listens there
    answer = client.Client(f"http://127.0.0.1:{port}", timeout_s=2).open_page()
    assert answer.status is None and answer.error.startswith("ConnectionRefusedError")
    assert answer.retry_after_s is None


def test_the_summary_marks_a_missed_target() -> None:
    table = report.render_table(
        [
            report.Check("burst", "a 429/503 with Retry-After arrived", "0 of 80", "≥ 1", False),
            report.Check("tiff", "upload answered", "415 in 0.30 s", "≤ 5 s", True),
            report.Check("throughput", "photos/min", "12/min", "—", None),
        ]
    )
    lines = table.splitlines()
    assert lines[2].endswith("✘") and lines[3].endswith("✔") and lines[4].endswith("—")


def test_the_soak_turns_every_rate_limit_of_the_repo_off(tmp_path) -> None:
    settings = tmp_path / "bgremover" / "settings.py"
    settings.parent.mkdir()
    settings.write_text('A = os.getenv("RATE_LIMIT_ADDRESS", "30/m")\nB = envint("OTHER", "1")\n')
    assert servers.limits_off_env(tmp_path) == {
        "RATE_LIMIT_ADDRESS": "off",
        "RATE_LIMIT_DOWNLOADS": "off",
        "RATE_LIMIT_UPLOADS": "off",
    }
