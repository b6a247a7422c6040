"""``manage.py fetch_models`` against a real local HTTP server."""

from __future__ import annotations

import shutil
from io import StringIO
from pathlib import Path

import pytest
from django.core.management import call_command
from django.core.management.base import CommandError

from bgremover.engine import weights_catalogue
from tests.engine import weights_support
from tests.engine.weights_support import md5_of, u2netp_spec

# The local weights server and the hermetic lookup setup are the engine tests' fixtures.
hermetic = weights_support.hermetic
random_u2netp = weights_support.random_u2netp
serve = weights_support.serve


def fetch(*args: str) -> str:
    out = StringIO()
    call_command("fetch_models", *args, stdout=out, stderr=out)
    return out.getvalue()


def test_downloads_then_reports_the_file_as_present(serve, random_u2netp, tmp_path, monkeypatch):
    server = serve({"u2netp.pth": random_u2netp.read_bytes()})
    monkeypatch.setitem(
        weights_catalogue.MODELS, "u2netp", u2netp_spec("unused", md5_of(random_u2netp))
    )

    output = fetch("u2netp", "--model-dir", str(tmp_path), "--base-url", server.url)

    assert f"from {server.url}/u2netp.pth" in output
    size_mb = random_u2netp.stat().st_size / 1e6
    assert f"[{'#' * 30}] 100%  {size_mb:.1f} / {size_mb:.1f} MB" in output  # the bar's last frame
    assert (
        f"u2netp: saved {tmp_path / 'u2netp.pth'} (md5 {md5_of(random_u2netp)} verified)" in output
    )
    assert (tmp_path / "u2netp.pth").read_bytes() == random_u2netp.read_bytes()

    again = fetch("u2netp", "--model-dir", str(tmp_path), "--base-url", server.url)
    assert f"u2netp: already present and valid at {tmp_path / 'u2netp.pth'}" in again
    assert len(server.requests) == 1


def test_valid_converted_weights_are_kept_although_their_md5_differs(
    serve, u2netp_weights, tmp_path
):
    server = serve({})
    shutil.copyfile(u2netp_weights, tmp_path / "u2netp.pth")
    output = fetch("u2netp", "--model-dir", str(tmp_path), "--base-url", server.url)
    assert "u2netp: already present and valid" in output
    assert server.requests == []


def test_an_unusable_file_is_replaced(serve, random_u2netp, tmp_path, monkeypatch):
    server = serve({"u2netp.pth": random_u2netp.read_bytes()})
    monkeypatch.setitem(
        weights_catalogue.MODELS, "u2netp", u2netp_spec("unused", md5_of(random_u2netp))
    )
    (tmp_path / "u2netp.pth").write_bytes(b"half a download")

    output = fetch("u2netp", "--model-dir", str(tmp_path), "--base-url", server.url)

    assert "the file present is not usable, downloading again" in output
    assert (tmp_path / "u2netp.pth").read_bytes() == random_u2netp.read_bytes()


def test_checksum_mismatch_fails_the_command_and_leaves_nothing(serve, u2netp_weights, tmp_path):
    # The shared file is a conversion whose md5 is not the authors' published one.
    server = serve({"u2netp.pth": u2netp_weights.read_bytes()})
    out = StringIO()
    with pytest.raises(CommandError, match="Could not fetch: u2netp"):
        call_command(
            "fetch_models",
            "u2netp",
            "--model-dir",
            str(tmp_path),
            "--base-url",
            server.url,
            stdout=out,
            stderr=out,
        )
    assert "does not match its published checksum" in out.getvalue()
    assert "Or try again with `python manage.py fetch_models u2netp`." in out.getvalue()
    assert list(tmp_path.iterdir()) == []


def test_default_names_are_the_general_models(serve, tmp_path):
    server = serve({})
    out = StringIO()
    with pytest.raises(CommandError, match="Could not fetch: u2net, u2netp"):
        call_command(
            "fetch_models",
            "--model-dir",
            str(tmp_path),
            "--base-url",
            server.url,
            stdout=out,
            stderr=out,
        )
    assert [path for path, _ in server.requests] == ["/u2net.pth", "/u2netp.pth"]
    assert "HTTP 404" in out.getvalue()


def test_unknown_names_are_refused_before_any_download(serve, tmp_path):
    server = serve({})
    with pytest.raises(CommandError, match="Unknown model.*u3net.*Known models: u2net, u2netp"):
        fetch("u2netp", "u3net", "--model-dir", str(tmp_path), "--base-url", server.url)
    assert server.requests == []


def test_list_shows_what_is_present(u2netp_weights, tmp_path: Path):
    shutil.copyfile(u2netp_weights, tmp_path / "u2netp.pth")
    lines = fetch("--list", "--model-dir", str(tmp_path)).splitlines()
    assert lines[0].startswith("u2net ") and lines[0].endswith("not present")
    assert lines[2].startswith("u2netp ") and lines[2].endswith(str(tmp_path / "u2netp.pth"))
    assert any("Supervisely" in line for line in lines)
