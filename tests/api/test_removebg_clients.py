"""remove.bg's own clients against this server, changing only the base URL and the key:
the curl examples of remove.bg's API documentation (a file, a URL, base64) run by real
curl, and the published Python client (``removebg`` 0.4 from PyPI) with its module's
API_ENDPOINT pointed here. What they write must be the images remove.bg would give."""

from __future__ import annotations

import base64
import io
import logging
import shlex
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from PIL import Image as PILImage
from removebg import removebg as client

from tests.api.conftest import create_key, small_jpeg
from tests.api.local_servers import LocalServer, answer, serve
from tests.conftest import missing

pytestmark = pytest.mark.browser  # live servers, like the browser tests

REMOVE_BG = "https://api.remove.bg"
KEY_PLACEHOLDER = "INSERT_YOUR_API_KEY_HERE"
# remove.bg's documented examples, as published (https://www.remove.bg/api).
CURL_FILE = (
    "curl -H 'X-API-Key: INSERT_YOUR_API_KEY_HERE' -F 'image_file=@/path/to/file.jpg' "
    "-F 'size=auto' -f https://api.remove.bg/v1.0/removebg -o no-bg.png"
)
CURL_URL = (
    "curl -H 'X-API-Key: INSERT_YOUR_API_KEY_HERE' "
    "-F 'image_url=https://www.remove.bg/example.jpg' -F 'size=auto' "
    "-f https://api.remove.bg/v1.0/removebg -o no-bg.png"
)
# The base64 variant: the same call with the image_file_b64 field.
CURL_B64 = (
    "curl -H 'X-API-Key: INSERT_YOUR_API_KEY_HERE' -F 'image_file_b64=BASE64' "
    "-F 'size=auto' -f https://api.remove.bg/v1.0/removebg -o no-bg.png"
)
EXAMPLE_URL = "https://www.remove.bg/example.jpg"


@pytest.fixture(scope="module")
def photo(eval_dir: Path) -> bytes:
    return small_jpeg(eval_dir, 300)


@pytest.fixture(scope="module")
def image_host(photo: bytes) -> Iterator[LocalServer]:
    """An image server on loopback, standing in for the example's www.remove.bg."""
    with serve(
        {"/example.jpg": lambda handler: answer(handler, photo, content_type="image/jpeg")}
    ) as server:
        yield server


def run_curl(command: str, base_url: str, key: str, cwd: Path) -> None:
    """``command`` with remove.bg's address and key replaced by this server's, run by bash."""
    if shutil.which("curl") is None:
        missing("curl is not installed: make browser-deps installs it")
    command = command.replace(REMOVE_BG, f"{base_url}/api").replace(KEY_PLACEHOLDER, key)
    done = subprocess.run(["bash", "-e", "-c", command], cwd=cwd, capture_output=True, timeout=300)
    assert done.returncode == 0, (shlex.split(command)[:6], done.stderr[-2000:])


def cutout(path: Path, size: tuple[int, int]) -> PILImage.Image:
    image = PILImage.open(path)
    image.load()
    assert (image.format, image.mode, image.size) == ("PNG", "RGBA", size)
    alpha = image.getchannel("A")
    assert alpha.getpixel((size[0] // 2, size[1] // 2)) > 200  # the dog
    assert alpha.getpixel((0, 0)) < 30  # the grass
    return image


def test_curl_with_a_file(
    api_env: dict[str, str], api_url: str, photo: bytes, tmp_path: Path
) -> None:
    (tmp_path / "file.jpg").write_bytes(photo)
    command = CURL_FILE.replace("/path/to/file.jpg", str(tmp_path / "file.jpg"))
    run_curl(command, api_url, create_key(api_env, "curl-file"), tmp_path)
    cutout(tmp_path / "no-bg.png", PILImage.open(io.BytesIO(photo)).size)


def test_curl_with_base64(
    api_env: dict[str, str], api_url: str, photo: bytes, tmp_path: Path
) -> None:
    command = CURL_B64.replace("BASE64", base64.b64encode(photo).decode())
    run_curl(command, api_url, create_key(api_env, "curl-b64"), tmp_path)
    cutout(tmp_path / "no-bg.png", PILImage.open(io.BytesIO(photo)).size)


def test_curl_with_an_image_url(
    url_api_env: dict[str, str],
    url_api_url: str,
    image_host: LocalServer,
    photo: bytes,
    tmp_path: Path,
) -> None:
    command = CURL_URL.replace(EXAMPLE_URL, image_host.url("/example.jpg"))
    run_curl(command, url_api_url, create_key(url_api_env, "curl-url"), tmp_path)
    cutout(tmp_path / "no-bg.png", PILImage.open(io.BytesIO(photo)).size)
    assert [seen.path for seen in image_host.requests] == ["/example.jpg"]


@pytest.fixture
def python_client(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """The client's root logging handler (it calls logging.basicConfig) removed after."""
    handlers = list(logging.getLogger().handlers)
    yield
    for handler in logging.getLogger().handlers:
        if handler not in handlers:
            logging.getLogger().removeHandler(handler)
            handler.close()


@pytest.mark.usefixtures("python_client")
def test_the_python_client(
    api_env: dict[str, str],
    api_url: str,
    url_api_env: dict[str, str],
    url_api_url: str,
    image_host: LocalServer,
    photo: bytes,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    size = PILImage.open(io.BytesIO(photo)).size
    source = tmp_path / "dog.jpg"
    source.write_bytes(photo)
    monkeypatch.setattr(client, "API_ENDPOINT", f"{api_url}/api/v1.0/removebg")
    remover = client.RemoveBg(create_key(api_env, "python-client"), str(tmp_path / "errors.log"))

    remover.remove_background_from_img_file(str(source))  # size "regular", no background
    cutout(Path(f"{source}_no_bg.png"), size)

    written = tmp_path / "b64.png"
    encoded = base64.b64encode(photo).decode()
    remover.remove_background_from_base64_img(encoded, size="preview", new_file_name=str(written))
    cutout(written, size)

    # A colour makes remove.bg answer a JPEG, which this client saves under its .png name.
    coloured = tmp_path / "green.png"
    remover.remove_background_from_base64_img(
        encoded, new_file_name=str(coloured), bg_color="green"
    )
    image = PILImage.open(coloured)
    assert image.format == "JPEG" and image.size == size
    red, green, blue = image.convert("RGB").getpixel((0, 0))
    assert green > 100 and red < 40 and blue < 40  # CSS green is #008000

    # A refused call raises as it would against remove.bg: requests' HTTPError, 403.
    stranger = client.RemoveBg("bgr_" + "x" * 40, str(tmp_path / "errors.log"))
    with pytest.raises(requests.HTTPError) as refused:
        stranger.remove_background_from_img_file(str(source))
    assert refused.value.response.status_code == 403
    assert refused.value.response.json()["errors"][0]["code"] == "auth_failed"

    monkeypatch.setattr(client, "API_ENDPOINT", f"{url_api_url}/api/v1.0/removebg")
    by_url = client.RemoveBg(create_key(url_api_env, "python-client"), str(tmp_path / "errors.log"))
    fetched = tmp_path / "from-url.png"
    by_url.remove_background_from_img_url(
        image_host.url("/example.jpg"), new_file_name=str(fetched)
    )
    cutout(fetched, size)
