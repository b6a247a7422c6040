"""A burst against a real server: Daphne with its in-process worker and deliberately small
bounds, hit by many cookie-less clients at once over real sockets. Every answer is an accepted
job or a clear refusal with Retry-After (never a 500 or a hang), the server keeps answering
pages meanwhile, and every accepted job ends. The figures at full scale are `make stress`'s."""

from __future__ import annotations

import io
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from PIL import Image as PILImage

from tests.browser.conftest import running_server, server_environment
from tests.browser.test_server import Visitor

CLIENTS = 12
QUEUE_LIMIT = 4


@pytest.fixture(scope="module")
def bounded_server(tmp_path_factory: pytest.TempPathFactory, u2netp_weights: Path) -> Iterator[str]:
    env = server_environment(tmp_path_factory.mktemp("stress-data"), u2netp_weights.parent, 1)
    env.update(
        HEAVY_OPERATIONS="1",
        HEAVY_WAIT_S="1",
        JOB_QUEUE_LIMIT=str(QUEUE_LIMIT),
        MAX_UPLOAD_BYTES=str(8 * 1024 * 1024),
    )
    with running_server(env, "stress-server.log") as url:
        yield url


def _photo(eval_dir: Path) -> bytes:
    """A 12-megapixel JPEG: big enough that its job takes seconds."""
    source = PILImage.open(eval_dir / "sod" / "images" / "ecssd_0070.jpg").convert("RGB")
    out = io.BytesIO()
    source.resize((4000, 3000)).save(out, "JPEG", quality=85)
    return out.getvalue()


def test_a_burst_of_cookie_less_uploads_is_answered_and_every_accepted_job_ends(
    bounded_server: str, eval_dir: Path
) -> None:
    photo = _photo(eval_dir)
    start = threading.Barrier(CLIENTS)
    answers: list[tuple[Visitor, int, dict[str, object], dict[str, str]]] = []

    def client() -> None:
        visitor = Visitor(bounded_server)  # a fresh cookie jar: a new session each
        start.wait()
        status, headers, body = visitor.request("POST", "/upload/", *_multipart("burst.jpg", photo))
        answers.append((visitor, status, json.loads(body), headers))

    threads = [threading.Thread(target=client) for _ in range(CLIENTS)]
    for thread in threads:
        thread.start()
    # The server keeps answering pages while the burst is handled.
    page_times = []
    while any(thread.is_alive() for thread in threads):
        began = time.monotonic()
        assert Visitor(bounded_server).request("GET", "/gallery/")[0] == 200
        page_times.append(time.monotonic() - began)
        time.sleep(0.2)
    for thread in threads:
        thread.join(timeout=120)

    statuses = sorted(status for _, status, _, _ in answers)
    assert len(answers) == CLIENTS
    assert set(statuses) <= {201, 429, 503}, statuses
    accepted = [(visitor, body) for visitor, status, body, _ in answers if status == 201]
    refused = [(status, body, headers) for _, status, body, headers in answers if status != 201]
    assert 1 <= len(accepted) <= QUEUE_LIMIT, statuses
    for status, body, headers in refused:
        assert int(headers["Retry-After"]) > 0, (status, body)
        assert body["error"] and "Traceback" not in str(body["error"])
    assert max(page_times, default=0) < 30

    for visitor, state in accepted:
        assert visitor.wait_done(state)["status"] == "done"
    # Once the queue has drained, uploads are accepted again.
    assert Visitor(bounded_server).upload("after.jpg", photo)[0] == 201


def _multipart(name: str, data: bytes) -> tuple[bytes, dict[str, str]]:
    boundary = "stress-boundary-7c1f"
    body = (
        (
            f'--{boundary}\r\nContent-Disposition: form-data; name="file"; filename="{name}"\r\n'
            "Content-Type: application/octet-stream\r\n\r\n"
        ).encode()
        + data
        + f"\r\n--{boundary}--\r\n".encode()
    )
    return body, {"Content-Type": f"multipart/form-data; boundary={boundary}"}
