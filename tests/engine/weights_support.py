"""The weights tests' shared parts: a local HTTP server that serves weights files the way
Google Drive does (confirmation pages, quotas, dropped connections), the fixtures that keep
the lookups hermetic, and small helpers."""

from __future__ import annotations

import hashlib
import threading
import time
from collections.abc import Iterator
from dataclasses import replace
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qsl, urlsplit

import pytest
import torch

from bgremover.engine import weights_catalogue, weights_loader
from bgremover.engine.model import U2NETP
from bgremover.engine.weights_catalogue import ModelSpec

DRIVE_CONFIRM_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Virus scan warning</title>
</head><body><div class="uc-main"><div id="uc-text">
<p class="uc-warning-caption">Google Drive can't scan this file for viruses.</p>
<p class="uc-warning-subcaption"><span class="uc-name-size"><a href="/open?id={id}">{id}</a>
(168M)</span> is too large for Google to scan for viruses. Would you still like to download
this file?</p><form id="download-form" action="{action}" method="get">
<input type="submit" id="uc-download-link" class="jfk-button" value="Download anyway"/>
<input type="hidden" name="id" value="{id}"><input type="hidden" name="export" value="download">
<input type="hidden" name="confirm" value="t"><input type="hidden" name="uuid" value="{uuid}">
</form></div></div></body></html>"""

DRIVE_QUOTA_PAGE = """<!DOCTYPE html><html><head><title>Google Drive - Quota exceeded</title></head>
<body><div class="uc-main"><div id="uc-text">
<p class="uc-error-caption">Sorry, you can't view or download this file at this time.</p>
<p class="uc-error-subcaption">Too many users have viewed or downloaded this file recently.
Please try accessing the file again later.</p></div></div></body></html>"""

CONFIRM_UUID = "5e1c3a52-0f6b-4c1e-9a57-2c1f0d4e7b11"


class WeightsServer(ThreadingHTTPServer):
    """A real HTTP server on 127.0.0.1 serving ``files`` by name (``/NAME``) and, like Google
    Drive, at ``/download?id=NAME``, with switchable misbehaviour."""

    daemon_threads = True

    def __init__(self, files: dict[str, bytes]) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.files = files
        self.requests: list[tuple[str, str | None]] = []  # (path, Range header)
        self.honour_range = True
        self.confirm_page = False  # answer /download without confirm= with Drive's warning
        self.quota_page = False  # answer everything with Drive's quota-exceeded page
        self.drops = 0  # this many responses stop after drop_after body bytes
        self.drop_after = 0
        self.delay = 0.0  # seconds before each answer, so concurrent clients overlap

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Handler(BaseHTTPRequestHandler):
    server: WeightsServer

    def log_message(self, format: str, *args: object) -> None:  # keep pytest output clean
        pass

    def do_GET(self) -> None:
        server = self.server
        server.requests.append((self.path, self.headers.get("Range")))
        time.sleep(server.delay)
        split = urlsplit(self.path)
        query = dict(parse_qsl(split.query))
        name = split.path.lstrip("/")
        if server.quota_page:
            return self._send_html(DRIVE_QUOTA_PAGE)
        if name == "download":
            name = query.get("id", "")
            if server.confirm_page and "confirm" not in query:
                return self._send_html(
                    DRIVE_CONFIRM_PAGE.format(
                        id=name, action=f"{server.url}/download", uuid=CONFIRM_UUID
                    )
                )
        body = server.files.get(name)
        if body is None:
            return self.send_error(404)
        start = 0
        requested = self.headers.get("Range")
        if requested and server.honour_range:
            start = int(requested.removeprefix("bytes=").partition("-")[0])
            self.send_response(206)
            self.send_header("Content-Range", f"bytes {start}-{len(body) - 1}/{len(body)}")
        else:
            self.send_response(200)
        self.send_header("Content-Type", "application/octet-stream")
        self.send_header("Content-Length", str(len(body) - start))
        self.end_headers()
        payload = body[start:]
        if server.drops > 0:
            server.drops -= 1
            payload = payload[: server.drop_after]
            self.close_connection = True
        self.wfile.write(payload)

    def _send_html(self, page: str) -> None:
        encoded = page.encode()
        self.send_response(200)
        self.send_header("Content-Type", "text/html; charset=utf-8")
        self.send_header("Content-Length", str(len(encoded)))
        self.end_headers()
        self.wfile.write(encoded)


@pytest.fixture
def serve() -> Iterator:
    """``serve(files)`` starts a WeightsServer; every one is shut down after the test."""
    servers: list[WeightsServer] = []

    def start(files: dict[str, bytes]) -> WeightsServer:
        server = WeightsServer(files)
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


@pytest.fixture(scope="module")
def random_u2netp(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A randomly initialised U2NETP state dict: valid layout, bytes of our own."""
    torch.manual_seed(0)
    path = tmp_path_factory.mktemp("random") / "u2netp.pth"
    torch.save(U2NETP().state_dict(), path)
    return path


@pytest.fixture(autouse=True)
def hermetic(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Path]:
    """No lookups in the developer's own models/; a fresh model cache."""
    repo_models = tmp_path_factory.mktemp("repo-models")
    monkeypatch.setattr(weights_catalogue, "REPO_MODEL_DIR", repo_models)
    weights_loader.clear_model_cache()
    yield repo_models
    weights_loader.clear_model_cache()


def md5_of(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def u2netp_spec(url: str, md5: str | None) -> ModelSpec:
    return replace(weights_catalogue.MODELS["u2netp"], url=url, md5=md5)


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir() if p.name.endswith(".part"))
