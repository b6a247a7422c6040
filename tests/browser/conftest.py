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
from contextlib import contextmanager
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, sync_playwright

from tests.conftest import REPO_ROOT

ARTIFACTS = REPO_ROOT / "artifacts"
SERVER_START_TIMEOUT_S = 60
UPLOAD_LIMIT_BYTES = 4 * 1024 * 1024  # "4.0 MB"
MANAGE = [sys.executable, str(REPO_ROOT / "manage.py")]


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


def server_environment(data_dir: Path, weights_dir: Path, workers: int) -> dict[str, str]:
    """The environment of a production-like server process on its own data directory."""
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bgremover.settings",
        "DEBUG": "0",
        "ALLOW_DEV_SECRET_KEY": "1",
        "DATA_DIR": str(data_dir),
        "STATIC_ROOT": str(data_dir / "static"),
        "BGREMOVER_MODEL_DIR": str(weights_dir),
        # Set explicitly: pytest's own settings put 0 in this process's environment.
        "INPROCESS_WORKERS": str(workers),
        # The periodic purge runs often, so tests can watch it work.
        "PURGE_INTERVAL_S": "1",
        # Small enough that tests of the size limit need not push 25 MB around.
        "MAX_UPLOAD_BYTES": str(UPLOAD_LIMIT_BYTES),
        # Every test's browser comes from 127.0.0.1: the per-address limits would count the
        # whole session as one visitor (tests/web/test_rate_limit.py tests the limits).
        "RATE_LIMIT_UPLOADS_PER_ADDRESS": "1000/10m",
        "RATE_LIMIT_DOWNLOADS_PER_ADDRESS": "2000/10m",
        "PYTHONUNBUFFERED": "1",
    }


@contextmanager
def process(command: list[str], env: dict[str, str], log_name: str) -> Iterator[subprocess.Popen]:
    """Run a background process with its output in artifacts/, stopped on exit."""
    ARTIFACTS.mkdir(exist_ok=True)
    with (ARTIFACTS / log_name).open("wb") as log_file:
        child = subprocess.Popen(
            command, cwd=REPO_ROOT, env=env, stdout=log_file, stderr=subprocess.STDOUT
        )
        try:
            yield child
        finally:
            child.terminate()
            try:
                child.wait(timeout=10)
            except subprocess.TimeoutExpired:
                child.kill()
                child.wait()


@contextmanager
def running_server(env: dict[str, str], log_name: str) -> Iterator[str]:
    """Migrate, collect static files and serve with Daphne; yields the base URL."""
    subprocess.run([*MANAGE, "migrate", "--noinput", "-v", "0"], env=env, check=True)
    subprocess.run([*MANAGE, "collectstatic", "--noinput", "-v", "0"], env=env, check=True)
    port = _free_port()
    daphne = str(Path(sys.executable).with_name("daphne"))
    command = [daphne, "-b", "127.0.0.1", "-p", str(port), "bgremover.asgi:application"]
    with process(command, env, log_name) as server:
        url = f"http://127.0.0.1:{port}"
        _wait_until_up(url + "/", server, ARTIFACTS / log_name)
        yield url


@contextmanager
def server_of_its_own(
    tmp_path_factory: pytest.TempPathFactory, weights: Path, name: str, **variables: str
) -> Iterator[str]:
    """The embedded default with these environment variables on its own data (a module's
    server, for settings the shared one cannot have); its log is ``artifacts/<name>.log``."""
    data = tmp_path_factory.mktemp(f"{name}-data")
    env = {**server_environment(data, weights.parent, 1), **variables}
    with running_server(env, f"{name}.log") as url:
        yield url


@pytest.fixture(scope="session")
def server_env(tmp_path_factory: pytest.TempPathFactory, u2netp_weights: Path) -> dict[str, str]:
    return server_environment(tmp_path_factory.mktemp("server-data"), u2netp_weights.parent, 1)


@pytest.fixture(scope="session")
def server_url(server_env: dict[str, str]) -> Iterator[str]:
    """Base URL of the embedded-default server: Daphne with one in-process job worker."""
    with running_server(server_env, "browser-server.log") as url:
        yield url


@pytest.fixture(scope="session")
def media_root(server_env: dict[str, str]) -> Path:
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


def new_page(browser: Browser, base_url: str) -> Page:
    context = browser.new_context(
        base_url=base_url, accept_downloads=True, viewport={"width": 1280, "height": 900}
    )
    context.set_default_timeout(30_000)
    return context.new_page()


@pytest.fixture
def page(browser: Browser, server_url: str) -> Iterator[Page]:
    """A fresh browser context per test: a new session, so a new owner."""
    fresh = new_page(browser, server_url)
    yield fresh
    fresh.context.close()


# A phone (390×844, touch) and a laptop screen (1280×860), as people use the app.
PHONE = {"viewport": {"width": 390, "height": 844}, "has_touch": True, "is_mobile": True}
DESKTOP = {"viewport": {"width": 1280, "height": 860}}


def device_page(browser: Browser, base_url: str, device: dict, **options: object) -> Page:
    context = browser.new_context(base_url=base_url, accept_downloads=True, **device, **options)
    context.set_default_timeout(30_000)
    return context.new_page()


@pytest.fixture
def phone_page(browser: Browser, server_url: str) -> Iterator[Page]:
    fresh = device_page(browser, server_url, PHONE)
    yield fresh
    fresh.context.close()


@pytest.fixture
def desktop_page(browser: Browser, server_url: str) -> Iterator[Page]:
    fresh = device_page(browser, server_url, DESKTOP)
    yield fresh
    fresh.context.close()


@pytest.fixture(scope="session")
def artifacts() -> Path:
    ARTIFACTS.mkdir(exist_ok=True)
    return ARTIFACTS
