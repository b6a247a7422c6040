"""A real server and a real browser: Daphne with the in-process worker and real weights on a
free loopback port, driven by Debian's Chromium through Playwright."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import REPO_ROOT

ARTIFACTS = REPO_ROOT / "artifacts"
SERVER_START_TIMEOUT_S = 60


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _wait_until_up(url: str, server: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            raise RuntimeError(f"the server exited early:\n{log.read_text()[-4000:]}")
        try:
            with urllib.request.urlopen(url, timeout=2) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.3)
    raise RuntimeError(f"the server did not answer within {SERVER_START_TIMEOUT_S} s")


@pytest.fixture(scope="session")
def server_env(tmp_path_factory: pytest.TempPathFactory, u2netp_weights: Path) -> dict:
    data_dir = tmp_path_factory.mktemp("server-data")
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bgremover.settings",
        "DEBUG": "0",
        "ALLOW_DEV_SECRET_KEY": "1",
        "DATA_DIR": str(data_dir),
        "STATIC_ROOT": str(data_dir / "static"),
        "BGREMOVER_MODEL_DIR": str(u2netp_weights.parent),
        # pytest's own settings turn these off; the real server runs them.
        "INPROCESS_WORKERS": "1",
        "PYTHONUNBUFFERED": "1",
    }
    return env


@pytest.fixture(scope="session")
def server_url(server_env: dict) -> Iterator[str]:
    """Base URL of a real Daphne server (migrated, static files collected)."""
    env = server_env
    manage = [sys.executable, str(REPO_ROOT / "manage.py")]
    subprocess.run([*manage, "migrate", "--noinput", "-v", "0"], env=env, check=True)
    subprocess.run([*manage, "collectstatic", "--noinput", "-v", "0"], env=env, check=True)
    port = _free_port()
    ARTIFACTS.mkdir(exist_ok=True)
    log = ARTIFACTS / "browser-server.log"
    daphne = str(Path(sys.executable).with_name("daphne"))
    with log.open("wb") as log_file:
        server = subprocess.Popen(
            [daphne, "-b", "127.0.0.1", "-p", str(port), "bgremover.asgi:application"],
            cwd=REPO_ROOT,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
        )
        url = f"http://127.0.0.1:{port}"
        try:
            _wait_until_up(url + "/", server, log)
            yield url
        finally:
            server.terminate()
            try:
                server.wait(timeout=10)
            except subprocess.TimeoutExpired:
                server.kill()


@pytest.fixture(scope="session")
def media_root(server_env: dict) -> Path:
    return Path(server_env["DATA_DIR"]) / "media"


@pytest.fixture(scope="session")
def browser() -> Iterator[Browser]:
    chromium = shutil.which("chromium")
    if chromium is None:
        pytest.skip("Debian's chromium is not installed: run `make browser-deps`")
    with sync_playwright() as playwright:
        launched = playwright.chromium.launch(
            executable_path=chromium,
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        yield launched
        launched.close()


@pytest.fixture
def page(browser: Browser, server_url: str) -> Iterator[Page]:
    """A fresh browser context per test: a new session, so a new owner."""
    context = browser.new_context(
        base_url=server_url, accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(30_000)
    new_page = context.new_page()
    yield new_page
    context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
