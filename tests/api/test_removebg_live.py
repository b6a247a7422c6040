"""The remove.bg-compatible call end to end: a real server, a real worker, the real network,
and keys made by the real command; the answers are read as remove.bg's clients read them."""

from __future__ import annotations

import base64
import io
import json
import socket
import time
import zipfile
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pytest
from PIL import Image as PILImage

from tests.api.conftest import create_key, small_jpeg
from tests.api.http import post_form, post_json, request
from tests.browser.conftest import UPLOAD_LIMIT_BYTES
from tests.browser.test_server import _read_response

pytestmark = pytest.mark.browser  # a live server, like the browser tests


@pytest.fixture(scope="module")
def dog(eval_dir: Path) -> bytes:
    return small_jpeg(eval_dir, 400)


def call(api_url: str, key: str, photo: bytes, **fields: str):  # noqa: ANN201
    return post_form(
        f"{api_url}/api/v1.0/removebg",
        fields,
        {"image_file": ("dog.jpg", photo)},
        {"X-Api-Key": key},
    )


def decoded(body: bytes) -> PILImage.Image:
    image = PILImage.open(io.BytesIO(body))
    image.load()
    return image


def stored_images(api_env: dict[str, str]) -> list[Path]:
    return list((Path(api_env["DATA_DIR"]) / "media" / "images").glob("*"))


def test_transparent_png_with_remove_bg_headers(
    api_url: str, api_key: str, api_env: dict[str, str], dog: bytes
) -> None:
    before = set(stored_images(api_env))  # the session's other tests keep jobs-API images
    answer = call(api_url, api_key, dog)
    assert answer.status == 200, answer.body
    assert answer.headers["Content-Type"] == "image/png"
    result = decoded(answer.body)
    assert result.mode == "RGBA" and result.size == decoded(dog).size
    assert (answer.headers["X-Width"], answer.headers["X-Height"]) == tuple(
        str(side) for side in result.size
    )
    alpha = np.asarray(result)[:, :, 3]
    rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
    assert int(answer.headers["X-Foreground-Top"]) == rows[0]
    assert int(answer.headers["X-Foreground-Left"]) == cols[0]
    assert int(answer.headers["X-Foreground-Height"]) == rows[-1] + 1 - rows[0]
    assert int(answer.headers["X-Foreground-Width"]) == cols[-1] + 1 - cols[0]
    assert answer.headers["X-Credits-Charged"] == "0.25"  # at most 0.25 megapixels
    assert answer.headers["X-Type"] == "other"
    # The dog is kept and the grass at the corners is not.
    assert alpha[alpha.shape[0] // 2, alpha.shape[1] // 2] > 200
    assert max(alpha[0, 0], alpha[0, -1], alpha[-1, 0], alpha[-1, -1]) < 30
    # A synchronous call keeps nothing: its files go as the answer goes out.
    deadline = time.monotonic() + 10
    while set(stored_images(api_env)) != before and time.monotonic() < deadline:
        time.sleep(0.1)
    assert set(stored_images(api_env)) == before


def test_json_answer_and_base64_input(api_url: str, api_key: str, dog: bytes) -> None:
    answer = post_json(
        f"{api_url}/api/v1.0/removebg",
        {"image_file_b64": base64.b64encode(dog).decode(), "size": "preview"},
        {"X-Api-Key": api_key, "Accept": "application/json"},
    )
    assert answer.status == 200, answer.body
    data = answer.json()["data"]
    result = decoded(base64.b64decode(data["result_b64"]))
    assert result.format == "PNG" and result.mode == "RGBA"
    assert data["foreground_width"] > 0 and data["foreground_height"] > 0
    assert data["foreground_top"] == int(answer.headers["X-Foreground-Top"])


def test_colour_background_makes_a_jpeg_and_type_is_echoed(
    api_url: str, api_key: str, dog: bytes
) -> None:
    answer = call(api_url, api_key, dog, bg_color="81d4fa", type="animal")
    assert answer.status == 200, answer.body
    assert answer.headers["Content-Type"] == "image/jpeg"
    assert answer.headers["X-Type"] == "animal"
    corner = np.asarray(decoded(answer.body))[2, 2].astype(int)
    assert np.abs(corner - [0x81, 0xD4, 0xFA]).max() <= 6


def test_size_crop_channels_and_zip(api_url: str, api_key: str, dog: bytes) -> None:
    cropped = call(api_url, api_key, dog, crop="true", crop_margin="10px", channels="alpha")
    assert cropped.status == 200, cropped.body
    mask = decoded(cropped.body)
    assert mask.mode == "L"
    width, height = (
        int(cropped.headers["X-Foreground-Width"]),
        int(cropped.headers["X-Foreground-Height"]),
    )
    assert mask.size == (width + 20, height + 20)
    assert (cropped.headers["X-Foreground-Left"], cropped.headers["X-Foreground-Top"]) == (
        "10",
        "10",
    )

    small = call(api_url, api_key, dog, size="preview", format="zip", bg_color="white")
    assert small.status == 200, small.body
    assert small.headers["Content-Type"] == "application/zip"
    with zipfile.ZipFile(io.BytesIO(small.body)) as archive:
        assert sorted(archive.namelist()) == ["alpha.png", "color.jpg"]
        colour = decoded(archive.read("color.jpg"))
        alpha = decoded(archive.read("alpha.png"))
    assert colour.size == alpha.size and colour.width * colour.height <= 250_000


def test_canvas_scale_position_and_shadow(api_url: str, api_key: str, dog: bytes) -> None:
    answer = call(
        api_url,
        api_key,
        dog,
        canvas="square",
        scale="50%",
        position="center",
        shadow_type="drop",
        shadow_opacity="60",
    )
    assert answer.status == 200, answer.body
    result = decoded(answer.body)
    assert result.width == result.height
    top, left = int(answer.headers["X-Foreground-Top"]), int(answer.headers["X-Foreground-Left"])
    width = int(answer.headers["X-Foreground-Width"])
    height = int(answer.headers["X-Foreground-Height"])
    assert max(width, height) == pytest.approx(result.width / 2, abs=3)
    assert left + width / 2 == pytest.approx(result.width / 2, abs=3)
    assert top + height / 2 == pytest.approx(result.height / 2, abs=3)
    # The shadow adds soft alpha beside the subject that the subject alone does not have.
    alpha = np.asarray(result)[:, :, 3]
    below = alpha[top + height : top + height + 10, left : left + width]
    assert below.size and below.max() > 0


def test_a_photo_without_a_subject_is_refused_and_not_charged(
    api_url: str, api_env: dict[str, str]
) -> None:
    key = create_key(api_env, "empty-photo", "--quota", "5")
    empty = io.BytesIO()
    PILImage.new("RGBA", (200, 150), (0, 0, 0, 0)).save(empty, "PNG")
    answer = post_form(
        f"{api_url}/api/v1.0/removebg",
        files={"image_file": ("empty.png", empty.getvalue())},
        headers={"X-Api-Key": key},
    )
    assert answer.status == 400 and answer.error_code() == "unknown_foreground"
    account = request(f"{api_url}/api/v1.0/account", headers={"X-Api-Key": key}).json()
    assert account["data"]["attributes"]["credits"]["total"] == 5


def test_a_body_over_the_limit_is_refused_in_remove_bg_shape(api_url: str, api_key: str) -> None:
    parts = urlsplit(api_url)
    head = (
        f"POST /api/v1.0/removebg HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Api-Key: {api_key}\r\n"
        "Content-Type: multipart/form-data; boundary=x\r\n"
        f"Content-Length: {UPLOAD_LIMIT_BYTES * 10}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head + b"\0" * 65536)  # a sliver of what it announced
        answer = _read_response(sock)
    assert answer.startswith(b"HTTP/1.1 413 ")
    body = json.loads(answer.split(b"\r\n\r\n", 1)[1])
    assert body["errors"][0]["code"] == "file_too_large"


def test_quota_is_charged_and_reported(api_url: str, api_env: dict[str, str], dog: bytes) -> None:
    key = create_key(api_env, "counted", "--quota", "1")
    for _ in range(4):
        assert call(api_url, key, dog).status == 200
    refused = call(api_url, key, dog)
    assert refused.status == 402 and refused.error_code() == "insufficient_credits"
    account = request(f"{api_url}/api/v1.0/account", headers={"X-Api-Key": key}).json()
    attributes = account["data"]["attributes"]
    assert attributes["credits"]["total"] == 0
    assert attributes["bgremover"]["images"] == 4


def hint_map(size: tuple[int, int], keep: tuple[int, ...], remove: tuple[int, ...]) -> bytes:
    """An 8-bit grey PNG: 255 in the ``keep`` box, 0 in the ``remove`` box, 128 elsewhere."""
    hints = PILImage.new("L", size, 128)
    hints.paste(255, keep)
    hints.paste(0, remove)
    buffer = io.BytesIO()
    hints.save(buffer, "PNG")
    return buffer.getvalue()


def test_a_hint_map_is_followed(api_url: str, api_key: str, dog: bytes) -> None:
    width, height = decoded(dog).size
    keep = (0, 0, 12, 12)  # grass in the corner, kept by hand
    remove = (width // 2 - 10, height // 2 - 10, width // 2 + 10, height // 2 + 10)  # the dog
    files = {
        "image_file": ("dog.jpg", dog),
        "hints_file": ("hints.png", hint_map((width, height), keep, remove)),
    }
    answer = post_form(f"{api_url}/api/v1.0/removebg", files=files, headers={"X-Api-Key": api_key})
    assert answer.status == 200, answer.body
    alpha = np.asarray(decoded(answer.body))[:, :, 3]
    assert alpha[2:10, 2:10].min() == 255  # every hinted pixel has its hinted value
    assert alpha[height // 2 - 8 : height // 2 + 8, width // 2 - 8 : width // 2 + 8].max() == 0
