"""A real server for the API's end-to-end tests: Daphne with one in-process worker and the
real weights on a free loopback port (the browser tests' server, without a browser), and
keys created with the real ``apikey`` command against its database."""

from __future__ import annotations

import io
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image as PILImage

from tests.browser.conftest import MANAGE, running_server, server_environment
from tests.web.client import PHOTO

# Rate-limit counters start from zero in every test here too: keys of tests rolled back
# reuse the same ids, so one test's count would fall on the next one's key.
from tests.web.conftest import fresh_rate_limits  # noqa: F401


@pytest.fixture(scope="session")
def api_env(tmp_path_factory: pytest.TempPathFactory, u2netp_weights: Path) -> dict[str, str]:
    env = server_environment(tmp_path_factory.mktemp("api-server"), u2netp_weights.parent, 1)
    return {**env, "API_RATE_LIMIT": "off"}


@pytest.fixture(scope="session")
def api_url(api_env: dict[str, str]) -> Iterator[str]:
    with running_server(api_env, "api-server.log") as url:
        yield url


@pytest.fixture(scope="session")
def url_api_env(tmp_path_factory: pytest.TempPathFactory, u2netp_weights: Path) -> dict[str, str]:
    """A second server that fetches image URLs (API_IMAGE_URLS on), with loopback allowed as
    an operator would allow an internal image host, so tests can serve the images."""
    env = server_environment(tmp_path_factory.mktemp("api-url-server"), u2netp_weights.parent, 1)
    return {
        **env,
        "API_RATE_LIMIT": "off",
        "API_IMAGE_URLS": "1",
        "API_FETCH_ALLOWED_NETWORKS": "127.0.0.1/32",
    }


@pytest.fixture(scope="session")
def url_api_url(url_api_env: dict[str, str]) -> Iterator[str]:
    with running_server(url_api_env, "api-url-server.log") as url:
        yield url


def create_key(env: dict[str, str], name: str, *options: str) -> str:
    """A new key, made with ``manage.py apikey create`` as an operator would."""
    done = subprocess.run(
        [*MANAGE, "apikey", "create", name, *options],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return re.search(r"bgr_[A-Za-z0-9]+", done.stdout)[0]  # type: ignore[index]


def small_jpeg(eval_dir: Path, side: int, stem: str = PHOTO) -> bytes:
    """An SOD photo (the web tests' dog unless ``stem`` says) made at most ``side`` px: each
    call runs the network on it."""
    image = PILImage.open(eval_dir / "sod" / "images" / f"{stem}.jpg")
    image.thumbnail((side, side))
    buffer = io.BytesIO()
    image.save(buffer, "JPEG", quality=90)
    return buffer.getvalue()


@pytest.fixture(scope="session")
def api_key(api_env: dict[str, str], api_url: str) -> str:
    return create_key(api_env, "end-to-end")
