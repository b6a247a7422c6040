"""README.md's "HTTP API" section, run as written: its ```sh blocks in order by bash -e with
real curl (and its ```python blocks with this interpreter) against the live server, only
BGREMOVER_URL and API_KEY set; then the files they wrote are checked (images decode, JSON
parses), and the webhook signature check is run against the server's own signing."""

from __future__ import annotations

import io
import json
import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image as PILImage

from api.webhooks import sign
from tests.api.conftest import create_key, small_jpeg
from tests.conftest import REPO_ROOT, missing
from tests.web.client import PHOTO

pytestmark = pytest.mark.browser  # a live server, like the browser tests

SECTION = "## HTTP API"
BLOCK = re.compile(r"^```(sh|python)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
RUN_TIMEOUT_S = 600


def section() -> str:
    text = (REPO_ROOT / "README.md").read_text()
    start = text.index(f"\n{SECTION}\n")
    end = text.index("\n## ", start + 1)
    return text[start:end]


def blocks() -> list[tuple[str, str]]:
    return [(match[1], match[2]) for match in BLOCK.finditer(section())]


def test_every_curl_of_the_section_is_in_a_block_that_runs() -> None:
    text = section()
    in_blocks = sum(code.count("curl ") for kind, code in blocks() if kind == "sh")
    assert in_blocks >= 10
    # Prose may name curl options, but every command is in a block the test runs.
    assert text.count("curl -") == in_blocks


def _script(directory: Path) -> Path:
    """The blocks in order, each announced on stderr so a failure names its block."""
    lines = ["set -euo pipefail"]
    for number, (kind, code) in enumerate(blocks(), 1):
        lines.append(f"echo '--- README block {number} ({kind})' >&2")
        if kind == "sh":
            lines.append(code)
        else:
            script = directory / f"block{number}.py"
            script.write_text(code)
            lines.append(f'"$PYTHON" {script.name}')
        # A block's output may end without a newline (curl prints the server's JSON as it
        # is): without this the next block's first line would not start a line.
        lines.append("echo")
    path = directory / "readme.sh"
    path.write_text("\n".join(lines) + "\n")
    return path


def _image(path: Path, kind: str) -> PILImage.Image:
    image = PILImage.open(io.BytesIO(path.read_bytes()))
    image.load()
    assert image.format == kind, (path.name, image.format)
    return image


def test_the_examples_run_against_the_live_server(
    api_env: dict[str, str], api_url: str, eval_dir: Path, tmp_path: Path
) -> None:
    if shutil.which("curl") is None:
        missing("curl is not installed: make browser-deps installs it")
    images = sorted((eval_dir / "sod" / "images").glob("*.jpg"))
    other = next(p.stem for p in images if p.stem != PHOTO)
    (tmp_path / "photo.jpg").write_bytes(small_jpeg(eval_dir, 240))
    (tmp_path / "photo2.jpg").write_bytes(small_jpeg(eval_dir, 240, other))
    key = create_key(api_env, "readme")
    env = {
        "PATH": os.environ["PATH"],
        "HOME": str(tmp_path),
        "BGREMOVER_URL": api_url,
        "API_KEY": key,
        "PYTHON": sys.executable,
    }
    started = time.monotonic()
    done = subprocess.run(
        ["bash", "-e", str(_script(tmp_path))],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert done.returncode == 0, f"{done.stderr[-3000:]}\n{done.stdout[-2000:]}"
    assert time.monotonic() - started < RUN_TIMEOUT_S
    out = done.stdout
    # The first call's headers, as remove.bg's clients read them.
    assert re.search(r"(?im)^x-credits-charged: 0\.25$", out)
    assert re.search(r"(?im)^x-foreground-width: \d+$", out)
    cutout = _image(tmp_path / "no-bg.png", "PNG")
    assert cutout.mode == "RGBA" and cutout.size == PILImage.open(tmp_path / "photo.jpg").size
    assert _image(tmp_path / "on-blue.jpg", "JPEG").mode == "RGB"
    assert _image(tmp_path / "from-json.png", "PNG").mode == "RGBA"
    assert json.loads((tmp_path / "answer.json").read_text())["data"]["foreground_width"] > 0
    # The submission's bg_color=white is the result's default; format=png from the download.
    job = _image(tmp_path / "job.png", "PNG")
    assert job.mode == "RGB" and job.getpixel((0, 0)) == (255, 255, 255)
    submitted = json.loads((tmp_path / "submitted.json").read_text())["data"]
    assert len(submitted) == 2
    listed = json.loads((tmp_path / "jobs.json").read_text())["data"]
    assert submitted[0]["id"] in {job["id"] for job in listed}
    account = re.search(r'\{"data": \{"attributes".*?\}\}\}\}', out)
    assert account and json.loads(account[0])["data"]["attributes"]["bgremover"]["name"] == "readme"
    # The websocket example printed the second job's states, ending with done.
    assert re.search(r"(?m)^done 100$", out), out[-1500:]
    assert '"code": "invalid_parameters"' in out  # the error example
    assert json.loads((tmp_path / "openapi.json").read_text())["openapi"].startswith("3.1")


def test_the_signature_check_accepts_the_servers_signature_only() -> None:
    (code,) = [
        code for kind, code in blocks() if kind == "python" and "def verify_signature" in code
    ]
    namespace: dict = {}
    exec(compile(code, "README.md", "exec"), namespace)
    verify = namespace["verify_signature"]
    body = b'{"event":"job.finished","data":{}}'
    now = str(int(time.time()))
    header = "sha256=" + sign("s3cret", int(now), body)
    assert verify("s3cret", now, body, header)
    assert not verify("other", now, body, header)
    assert not verify("s3cret", now, body + b" ", header)
    old = str(int(time.time()) - 3600)
    assert not verify("s3cret", old, body, "sha256=" + sign("s3cret", int(old), body))
