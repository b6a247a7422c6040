"""Downloads from a real local HTTP server: checksums, Drive's pages, resuming, retries."""

from __future__ import annotations

import os
import time
from http.cookiejar import CookieJar
from urllib.parse import parse_qsl, urlsplit

import pytest

from bgremover.engine import weights_catalogue, weights_download
from bgremover.engine.errors import WeightsError, WeightsRemedy
from tests.engine import weights_support
from tests.engine.weights_support import CONFIRM_UUID, leftovers, md5_of, u2netp_spec

# The local weights server and the hermetic lookup setup (autouse) are shared fixtures.
hermetic = weights_support.hermetic
random_u2netp = weights_support.random_u2netp
serve = weights_support.serve


def test_download_verifies_md5_renames_atomically_and_reports_progress(
    serve, random_u2netp, tmp_path
):
    data = random_u2netp.read_bytes()
    server = serve({"u2netp.pth": data})
    target = tmp_path / "models"
    seen: list[tuple[int, int | None]] = []

    path = weights_download.download_weights(
        u2netp_spec(f"{server.url}/u2netp.pth", md5_of(random_u2netp)),
        target,
        progress=lambda done, total: seen.append((done, total)),
    )

    assert path == target / "u2netp.pth"
    assert path.read_bytes() == data
    assert leftovers(target) == []
    assert seen[-1] == (len(data), len(data))
    assert [done for done, _ in seen] == sorted(done for done, _ in seen)
    assert len(seen) >= 2  # 4.6 MB arrives in 1 MB chunks


def test_partial_downloads_a_killed_process_left_are_cleared(serve, random_u2netp, tmp_path):
    server = serve({"u2netp.pth": random_u2netp.read_bytes()})
    abandoned, in_progress = tmp_path / ".u2netp.pth.dead.part", tmp_path / ".u2netp.pth.live.part"
    for part in (abandoned, in_progress):
        part.write_bytes(b"half a file")
    an_hour_ago = time.time() - weights_download.ABANDONED_PART_S - 1
    os.utime(abandoned, (an_hour_ago, an_hour_ago))
    other = tmp_path / ".u2net.pth.old.part"  # another model's: not this download's business
    other.write_bytes(b"x")
    os.utime(other, (an_hour_ago, an_hour_ago))

    weights_download.download_weights(
        u2netp_spec(f"{server.url}/u2netp.pth", md5_of(random_u2netp)), tmp_path
    )
    assert leftovers(tmp_path) == sorted([in_progress.name, other.name])


def test_drive_virus_scan_page_is_confirmed_through_its_form(serve, random_u2netp, tmp_path):
    data = random_u2netp.read_bytes()
    server = serve({"u2netp.pth": data})
    server.confirm_page = True
    spec = u2netp_spec(
        f"{server.url}/download?id=u2netp.pth&export=download", md5_of(random_u2netp)
    )

    path = weights_download.download_weights(spec, tmp_path)

    assert path.read_bytes() == data
    first, second = (urlsplit(p) for p, _ in server.requests)
    assert dict(parse_qsl(first.query)) == {"id": "u2netp.pth", "export": "download"}
    assert second.path == "/download"
    assert dict(parse_qsl(second.query)) == {
        "id": "u2netp.pth",
        "export": "download",
        "confirm": "t",
        "uuid": CONFIRM_UUID,
    }


def test_drive_quota_page_gives_a_clear_error_and_no_file(serve, random_u2netp, tmp_path):
    server = serve({"u2netp.pth": random_u2netp.read_bytes()})
    server.quota_page = True
    with pytest.raises(WeightsError, match="Too many users") as raised:
        weights_download.download_weights(u2netp_spec(f"{server.url}/u2netp.pth", None), tmp_path)
    assert f"by hand from {server.url}/u2netp.pth into {tmp_path}" in str(raised.value)
    assert (raised.value.remedy, raised.value.model) == (WeightsRemedy.DOWNLOAD_FAILED, "u2netp")
    assert list(tmp_path.iterdir()) == []


def test_dropped_connection_resumes_with_a_range_request(serve, random_u2netp, tmp_path):
    data = random_u2netp.read_bytes()
    server = serve({"u2netp.pth": data})
    server.drops, server.drop_after = 1, 1_500_000

    path = weights_download.download_weights(
        u2netp_spec(f"{server.url}/u2netp.pth", md5_of(random_u2netp)), tmp_path, backoff=0
    )

    assert path.read_bytes() == data
    assert [rng for _, rng in server.requests] == [None, "bytes=1500000-"]
    assert leftovers(tmp_path) == []


def test_dropped_connection_restarts_when_the_server_ignores_range(serve, random_u2netp, tmp_path):
    data = random_u2netp.read_bytes()
    server = serve({"u2netp.pth": data})
    server.honour_range = False
    server.drops, server.drop_after = 2, 1_500_000

    path = weights_download.download_weights(
        u2netp_spec(f"{server.url}/u2netp.pth", md5_of(random_u2netp)), tmp_path, backoff=0
    )

    assert path.read_bytes() == data  # the 200 answers replaced the partial bytes, not appended
    assert len(server.requests) == 3


def test_gives_up_after_the_retries_and_leaves_nothing(serve, random_u2netp, tmp_path):
    server = serve({"u2netp.pth": random_u2netp.read_bytes()})
    server.honour_range = False
    server.drops, server.drop_after = 100, 1000

    with pytest.raises(WeightsError, match="failed after 2 retries: connection closed"):
        weights_download.download_weights(
            u2netp_spec(f"{server.url}/u2netp.pth", None), tmp_path, retries=2, backoff=0
        )
    assert len(server.requests) == 3
    assert list(tmp_path.iterdir()) == []


def test_checksum_mismatch_deletes_the_download_and_says_how_to_fix_it(
    serve, u2netp_weights, tmp_path
):
    # The shared u2netp.pth is a conversion, so it really differs from the authors' md5.
    server = serve({"u2netp.pth": u2netp_weights.read_bytes()})
    spec = weights_catalogue.MODELS["u2netp"]

    with pytest.raises(WeightsError) as raised:
        weights_download.download_weights(spec, tmp_path, base_url=server.url)

    message = str(raised.value)
    assert "u2netp.pth" in message and spec.md5 in message and md5_of(u2netp_weights) in message
    assert f"It can be downloaded by hand from {spec.url} into {tmp_path}." in message
    assert (raised.value.remedy, raised.value.model) == (WeightsRemedy.DOWNLOAD_FAILED, "u2netp")
    assert list(tmp_path.iterdir()) == []


def test_http_error_is_reported_without_retrying(serve, tmp_path):
    server = serve({})
    with pytest.raises(WeightsError, match="HTTP 404"):
        weights_download.download_weights(u2netp_spec(f"{server.url}/u2netp.pth", None), tmp_path)
    assert len(server.requests) == 1
    assert list(tmp_path.iterdir()) == []


def test_unreachable_server_is_a_weights_error(tmp_path):
    spec = u2netp_spec("http://127.0.0.1:9/u2netp.pth", None)  # discard port: refused
    with pytest.raises(WeightsError, match="Could not download u2netp.pth"):
        weights_download.download_weights(spec, tmp_path, retries=1, backoff=0)


def test_without_a_checksum_the_download_is_checked_by_layout(serve, random_u2netp, tmp_path):
    server = serve({"u2netp.pth": random_u2netp.read_bytes(), "bad/u2netp.pth": b"<not weights>"})
    good = weights_download.download_weights(
        u2netp_spec(f"{server.url}/u2netp.pth", None), tmp_path / "a"
    )
    assert good.read_bytes() == random_u2netp.read_bytes()

    with pytest.raises(
        WeightsError,
        match="downloaded from .*/bad/u2netp.pth is not a readable "
        "PyTorch weights file.*it was deleted",
    ):
        weights_download.download_weights(
            u2netp_spec("unused", None), tmp_path / "b", base_url=f"{server.url}/bad"
        )
    assert list((tmp_path / "b").iterdir()) == []


def test_mirror_base_url_is_given_by_the_caller(monkeypatch):
    spec = weights_catalogue.MODELS["u2net"]
    monkeypatch.setenv("BGREMOVER_WEIGHTS_URL", "http://ignored.example")  # the app reads it
    assert weights_download.source_url(spec) == spec.url
    assert weights_download.source_url(spec, "") == spec.url
    assert spec.url.startswith("https://drive.usercontent.google.com/download?id=1ao1ovG1Q")
    mirror = weights_download.source_url(spec, "http://mirror.example/weights/")
    assert mirror == "http://mirror.example/weights/u2net.pth"
    assert weights_download.source_url(spec, "http://other") == "http://other/u2net.pth"


def test_old_drive_confirm_link_is_followed():
    page = (
        '<a id="uc-download-link" href="/uc?export=download&amp;confirm=AbC1&amp;id=XyZ">'
        "Download anyway</a>"
    )
    url = weights_download._confirmation_url(
        page, "https://docs.google.com/uc?export=download&id=XyZ", CookieJar()
    )
    assert url == "https://docs.google.com/uc?export=download&confirm=AbC1&id=XyZ"
