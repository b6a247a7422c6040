"""The OpenAPI document against the live server: real requests (the success paths and each
documented refusal that can be caused from outside), each answer's status, Content-Type,
headers and JSON body checked against what the document says (tests/api/openapi_check.py)."""

from __future__ import annotations

import base64
import io
import socket
import time
from collections.abc import Callable
from email.message import Message
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from PIL import Image as PILImage

from editor.request_limits import MULTIPART_OVERHEAD
from tests.api.conftest import create_key, small_jpeg
from tests.api.http import Answer, post_form, post_json, request
from tests.api.openapi_check import CONTRACT
from tests.browser.conftest import UPLOAD_LIMIT_BYTES
from tests.browser.test_server import _read_response

pytestmark = pytest.mark.browser  # a live server, like the browser tests

REMOVEBG = "/api/v1.0/removebg"
ACCOUNT = "/api/v1.0/account"
JOBS = "/api/v1/jobs"
JOB = "/api/v1/jobs/{job_id}"
RESULT = "/api/v1/jobs/{job_id}/result"
JOB_TIMEOUT_S = 180


@pytest.fixture(scope="module")
def photo(eval_dir: Path) -> bytes:
    return small_jpeg(eval_dir, 200)


@pytest.fixture(scope="module")
def key(api_env: dict[str, str], api_url: str) -> str:
    return create_key(api_env, "contract")


def checked(answer: Answer, path: str, method: str, status: int) -> Answer:
    assert answer.status == status, answer.body[:500]
    CONTRACT.check(answer, path, method)
    return answer


def wait_done(api_url: str, key: str, job_url: str) -> dict:
    deadline = time.monotonic() + JOB_TIMEOUT_S
    while time.monotonic() < deadline:
        answer = checked(request(job_url, headers={"X-Api-Key": key}), JOB, "GET", 200)
        data = answer.json()["data"]
        if data["finished"]:
            return data
        time.sleep(0.3)
    raise AssertionError(f"{job_url} did not finish in {JOB_TIMEOUT_S} s")


def test_document_is_served_without_a_key(api_url: str) -> None:
    answer = checked(request(f"{api_url}/api/openapi.json"), "/api/openapi.json", "GET", 200)
    assert answer.json() == CONTRACT.doc


def test_removebg_answers_as_documented(api_url: str, key: str, photo: bytes) -> None:
    url = f"{api_url}{REMOVEBG}"
    image = checked(
        post_form(url, {"size": "preview"}, {"image_file": ("dog.jpg", photo)}, {"X-Api-Key": key}),
        REMOVEBG,
        "POST",
        200,
    )
    assert image.headers["Content-Type"] == "image/png"
    as_json = checked(
        post_json(
            url,
            {"image_file_b64": base64.b64encode(photo).decode(), "bg_color": "white"},
            {"Authorization": f"Bearer {key}", "Accept": "application/json"},
        ),
        REMOVEBG,
        "POST",
        200,
    )
    result = PILImage.open(io.BytesIO(base64.b64decode(as_json.json()["data"]["result_b64"])))
    assert result.format == "JPEG"  # an opaque background: auto is JPEG


def test_account_answers_as_documented(api_url: str, key: str) -> None:
    answer = checked(
        request(f"{api_url}{ACCOUNT}", headers={"X-Api-Key": key}), ACCOUNT, "GET", 200
    )
    assert answer.json()["data"]["attributes"]["bgremover"]["name"] == "contract"


def test_a_job_from_submission_to_deletion(api_url: str, key: str, photo: bytes) -> None:
    auth = {"X-Api-Key": key}
    submitted = checked(
        post_form(
            f"{api_url}{JOBS}", {"bg_color": "#1e90ff"}, {"image_file": ("dog.jpg", photo)}, auth
        ),
        JOBS,
        "POST",
        202,
    )
    job = submitted.json()["data"][0]
    done = wait_done(api_url, key, job["urls"]["self"])
    assert done["status"] == "done", done
    listed = checked(request(f"{api_url}{JOBS}?limit=1", headers=auth), JOBS, "GET", 200)
    assert [entry["id"] for entry in listed.json()["data"]] == [job["id"]]
    image = checked(request(done["urls"]["result"], headers=auth), RESULT, "GET", 200)
    assert image.headers["Content-Type"] == "image/jpeg"
    as_json = checked(
        post_json(
            done["urls"]["result"], {"format": "png"}, {**auth, "Accept": "application/json"}
        ),
        RESULT,
        "POST",
        200,
    )
    assert as_json.headers["X-Credits-Charged"] == "0"  # the same size again costs nothing
    deleted = checked(
        request(job["urls"]["self"], headers=auth, method="DELETE"), JOB, "DELETE", 204
    )
    assert deleted.body == b""
    checked(request(job["urls"]["self"], headers=auth), JOB, "GET", 404)
    checked(request(f"{job['urls']['self']}/result", headers=auth), RESULT, "GET", 404)


def announced_too_large(api_url: str, key: str) -> Answer:
    """A body announced larger than the limit: Daphne answers before it arrives (a raw
    socket, since urllib would keep sending into the closed connection)."""
    parts = urlsplit(api_url)
    head = (
        f"POST {REMOVEBG} HTTP/1.1\r\nHost: {parts.netloc}\r\nX-Api-Key: {key}\r\n"
        "Content-Type: application/json\r\n"
        f"Content-Length: {UPLOAD_LIMIT_BYTES + MULTIPART_OVERHEAD + 1024}\r\n\r\n"
    ).encode()
    with socket.create_connection((parts.hostname, parts.port), timeout=30) as sock:
        sock.sendall(head + b"{" * 1024)
        raw = _read_response(sock)
    top, body = raw.split(b"\r\n\r\n", 1)
    lines = top.decode("latin-1").split("\r\n")
    headers = Message()
    for line in lines[1:]:
        name, _, value = line.partition(":")
        headers[name] = value.strip()
    return Answer(int(lines[0].split()[1]), headers, body)


# Each refusal: (path, method, how to send it, expected status, expected code).
Send = Callable[[str, str, bytes], Answer]


def _form(fields: dict[str, str], files: dict | None = None, key: bool = True) -> Send:
    def send(url: str, api_key: str, photo: bytes) -> Answer:
        given = {name: ("dog.jpg", photo) for name in (files or {})}
        return post_form(url, fields, given, {"X-Api-Key": api_key} if key else {})

    return send


REFUSALS = {
    "no key": (REMOVEBG, _form({}, {"image_file": 1}, key=False), 403, "auth_failed"),
    "no image": (REMOVEBG, _form({"size": "preview"}), 400, "missing_source"),
    "bad size": (REMOVEBG, _form({"size": "huge"}, {"image_file": 1}), 400, "invalid_parameters"),
    "urls off": (
        REMOVEBG,
        _form({"image_url": "https://example.com/a.jpg"}),
        400,
        "image_urls_disabled",
    ),
    "jobs: no image": (JOBS, _form({"matting": "on"}), 400, "missing_image"),
    "jobs: bad matting": (
        JOBS,
        _form({"matting": "x"}, {"image_file": 1}),
        400,
        "invalid_parameters",
    ),
}


@pytest.mark.parametrize("case", list(REFUSALS), ids=list(REFUSALS))
def test_refusals_answer_as_documented(api_url: str, key: str, photo: bytes, case: str) -> None:
    path, send, status, code = REFUSALS[case]
    answer = checked(send(f"{api_url}{path}", key, photo), path, "POST", status)
    if code is not None:
        assert answer.error_code() == code


def test_refusals_of_the_body_and_the_key(
    api_env: dict[str, str], api_url: str, key: str, photo: bytes
) -> None:
    url = f"{api_url}{REMOVEBG}"
    wrong_key = request(f"{api_url}{ACCOUNT}", headers={"X-Api-Key": "bgr_" + "x" * 40})
    assert checked(wrong_key, ACCOUNT, "GET", 403).error_code() == "auth_failed"
    not_an_image = post_form(
        url, {}, {"image_file": ("a.jpg", b"not an image")}, {"X-Api-Key": key}
    )
    assert checked(not_an_image, REMOVEBG, "POST", 415).error_code() == "invalid_file_type"
    # A multipart body with no part: Twisted used to answer it with a bare 400 before Django.
    empty = request(
        f"{api_url}{JOBS}",
        b"--b--\r\n",
        {"X-Api-Key": key, "Content-Type": "multipart/form-data; boundary=b"},
        "POST",
    )
    assert checked(empty, JOBS, "POST", 400).error_code() == "missing_image"
    text = request(url, b"hello", {"X-Api-Key": key, "Content-Type": "text/plain"}, "POST")
    assert checked(text, REMOVEBG, "POST", 415).error_code() == "invalid_content_type"
    big = announced_too_large(api_url, key)
    assert checked(big, REMOVEBG, "POST", 413).error_code() == "file_too_large"
    poor = create_key(api_env, "poor", "--quota", "0")
    broke = post_form(url, {}, {"image_file": ("dog.jpg", photo)}, {"X-Api-Key": poor})
    assert checked(broke, REMOVEBG, "POST", 402).error_code() == "insufficient_credits"
    slow = create_key(api_env, "slow", "--rate", "1/1d")  # one window for the whole test
    first = request(
        f"{api_url}{JOBS}/{'0' * 8}-0000-0000-0000-{'0' * 12}", headers={"X-Api-Key": slow}
    )
    checked(first, JOB, "GET", 404)
    jobs = [
        post_form(f"{api_url}{JOBS}", {}, {"image_file": ("dog.jpg", photo)}, {"X-Api-Key": slow})
    ]
    jobs.append(
        post_form(f"{api_url}{JOBS}", {}, {"image_file": ("dog.jpg", photo)}, {"X-Api-Key": slow})
    )
    checked(jobs[0], JOBS, "POST", 202)
    limited = checked(jobs[1], JOBS, "POST", 429)
    assert limited.error_code() == "rate_limit_exceeded"
    assert int(limited.headers["Retry-After"]) > 0
    assert limited.headers["X-RateLimit-Remaining"] == "0"
    job = jobs[0].json()["data"][0]
    early = request(f"{job['urls']['self']}/result", headers={"X-Api-Key": slow})
    # Straight after submission the job is usually still queued (409); if the worker was
    # quicker the download is refused by the key's rate instead (429). Both are documented.
    assert early.status in (409, 429), early.body
    CONTRACT.check(early, RESULT, "GET")
    wait_done(api_url, slow, job["urls"]["self"])


def test_other_methods_are_refused_in_remove_bgs_shape(api_url: str, key: str) -> None:
    for path, method, allowed in (
        (REMOVEBG, "GET", "POST"),
        (ACCOUNT, "POST", "GET"),
        (JOBS, "PUT", "GET, POST"),
        (f"{JOBS}/{'0' * 8}-0000-0000-0000-{'0' * 12}", "POST", "GET, DELETE"),
    ):
        answer = request(f"{api_url}{path}", b"", {"X-Api-Key": key}, method)
        assert answer.status == 405, (path, method, answer.body[:200])
        assert answer.headers["Allow"] == allowed
        CONTRACT.validate(answer.json(), {"$ref": "#/components/schemas/Error"})
        assert answer.error_code() == "method_not_allowed"
