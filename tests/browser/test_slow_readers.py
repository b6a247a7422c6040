"""A client that reads a streamed response slowly, or not at all (editor.slow_readers): the
gallery's ZIP is rendered an image at a time as the client takes it, not whole into the
server's memory, and a client that takes nothing for SLOW_CLIENT_TIMEOUT_S is disconnected.
Seen from outside: images deleted while the client is not reading are not in the archive it
finally reads. Its own server, with a short timeout."""

from __future__ import annotations

import io
import socket
import time
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import new_page, server_of_its_own
from tests.browser.pages import open_upload_page, photo

STEMS = ["ecssd_0070", "ecssd_0235", "ecssd_0003", "ecssd_0014", "ecssd_0025", "ecssd_0134"]
# Each entry: the photo on a 3000×3000 blurred canvas, about 3.5 MB of PNG.
BIG_ENTRIES = {"background": "blur", "blur": "30", "canvas": "custom", "format": "png"}
TIMEOUT_S = 20


@pytest.fixture(scope="module")
def patient_server(tmp_path_factory: pytest.TempPathFactory, u2netp_weights: Path) -> Iterator[str]:
    timeout = {"SLOW_CLIENT_TIMEOUT_S": str(TIMEOUT_S)}
    with server_of_its_own(tmp_path_factory, u2netp_weights, "slow-readers", **timeout) as url:
        yield url


@pytest.fixture
def owner_page(browser: Browser, patient_server: str) -> Iterator[Page]:
    fresh = new_page(browser, patient_server)
    yield fresh
    fresh.context.close()


def zip_request(page: Page, eval_dir: Path, stems: list[str]) -> tuple[socket.socket, str]:
    """Upload ``stems``, then ask for their ZIP on a raw socket that reads nothing yet (with
    a small receive buffer); the socket and the page's CSRF token."""
    open_upload_page(page)
    page.set_input_files("#file-input", [photo(eval_dir, stem) for stem in stems])
    expect(page.locator('.job-card[data-status="done"]')).to_have_count(len(stems), timeout=180_000)
    page.goto("/gallery/")
    ids = page.eval_on_selector_all(".gallery-card", "cards => cards.map(c => c.dataset.image)")
    token = page.locator("#delete-all-form [name=csrfmiddlewaretoken]").get_attribute("value")
    assert token is not None
    fields = [("csrfmiddlewaretoken", token), *[("image", i) for i in ids]]
    size = [("canvas_width", "3000"), ("canvas_height", "3000")]
    body = urlencode([*fields, *BIG_ENTRIES.items(), *size]).encode()
    cookie = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    address = urlsplit(page.url)
    client = socket.socket()
    client.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    client.connect((address.hostname, address.port))
    client.sendall(
        f"POST /images/zip/ HTTP/1.1\r\nHost: {address.netloc}\r\nCookie: {cookie}\r\n"
        "Content-Type: application/x-www-form-urlencoded\r\n"
        f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n".encode()
        + body
    )
    client.settimeout(120)
    return client, token


def read_all(client: socket.socket) -> bytes:
    return b"".join(iter(lambda: client.recv(1 << 20), b""))


def body_of(response: bytes) -> bytes:
    """The body of a whole HTTP/1.1 response with chunked transfer encoding."""
    head, _, rest = response.partition(b"\r\n\r\n")
    assert b"transfer-encoding: chunked" in head.lower(), head
    body = b""
    while True:
        size, _, rest = rest.partition(b"\r\n")
        if int(size, 16) == 0:
            return body
        body, rest = body + rest[: int(size, 16)], rest[int(size, 16) + 2 :]


def test_a_zip_read_slowly_is_not_rendered_ahead(owner_page: Page, eval_dir: Path) -> None:
    client, token = zip_request(owner_page, eval_dir, STEMS)
    with client:
        time.sleep(12)  # reading nothing, long enough to render all six (and within the timeout)
        deleted = owner_page.request.post(
            "/images/delete-all/", form={"csrfmiddlewaretoken": token}
        )
        assert deleted.status == 200
        response = read_all(client)
    assert response.startswith(b"HTTP/1.1 200")
    archive = zipfile.ZipFile(io.BytesIO(body_of(response)))
    images = [name for name in archive.namelist() if name != "errors.txt"]
    # Rendered ahead, all six were in the server's memory before the client read them.
    assert 1 <= len(images) <= 3, archive.namelist()
    note = archive.read("errors.txt").decode()
    assert note.count("it was deleted before it could be added") == len(STEMS) - len(images)


def test_a_client_that_takes_nothing_is_disconnected(owner_page: Page, eval_dir: Path) -> None:
    client, _ = zip_request(owner_page, eval_dir, STEMS[:3])
    with client:
        time.sleep(TIMEOUT_S + 8)  # rendering the first entries, then the timeout
        # The server gave up: what the buffers held, then the connection is cut.
        with pytest.raises(ConnectionResetError):
            read_all(client)
    # The server goes on serving.
    assert owner_page.request.get("/gallery/").status == 200
