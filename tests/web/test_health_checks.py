"""Liveness and readiness (editor.operations): /healthz without the database, /readyz and
each way it fails, naming the failing check."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from channels.layers import BaseChannelLayer
from django.db import OperationalError
from django.test import Client

from bgremover.engine import weights_catalogue
from editor import operations
from editor.models import Job
from tests.conftest import REPO_ROOT
from tests.web.factories import make_image, make_job

CHECK_NAMES = {"database", "channel_layer", "weights", "queue", "disk"}


# ---- /healthz


def test_healthz_answers_ok_without_touching_the_database(client: Client) -> None:
    # No django_db mark: any query would fail this test.
    response = client.get("/healthz")
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    assert response["Cache-Control"] == "no-store"
    assert not response.cookies  # no session, no CSRF cookie
    assert client.head("/healthz").status_code == 200
    assert client.post("/healthz").status_code == 405


# ---- /readyz


@pytest.fixture
def ready(settings: object, real_weights: None, tmp_path: Path) -> None:
    """Settings under which every readiness check passes."""
    settings.DEFAULT_MODEL = "u2netp"  # type: ignore[attr-defined]
    settings.JOB_QUEUE_LIMIT = 200  # type: ignore[attr-defined]
    settings.DISK_BUDGET_BYTES = 10**9  # type: ignore[attr-defined]


def readiness(client: Client) -> tuple[int, dict[str, dict[str, object]]]:
    response = client.get("/readyz")
    body = response.json()
    assert set(body["checks"]) == CHECK_NAMES
    assert body["status"] == ("ok" if response.status_code == 200 else "failing")
    assert response["Cache-Control"] == "no-store"
    assert not response.cookies
    return response.status_code, body["checks"]


@pytest.mark.django_db
def test_readyz_passes_every_check(client: Client, ready: None) -> None:
    status, checks = readiness(client)
    assert status == 200, checks
    assert all(check["ok"] for check in checks.values())
    assert "u2netp.pth" in checks["weights"]["detail"]
    assert "CRC" in checks["weights"]["detail"]
    assert checks["queue"]["detail"] == "0 queued or running, JOB_QUEUE_LIMIT 200"
    assert "round trip" in checks["channel_layer"]["detail"]


class UnreachableLayer(BaseChannelLayer):
    """A channel layer whose server refuses connections."""

    async def new_channel(self, prefix: str = "specific.") -> str:
        return f"{prefix}test!1"

    async def send(self, channel: str, message: dict) -> None:
        raise ConnectionRefusedError("Connect call failed ('10.0.0.9', 6379)")


class SilentLayer(UnreachableLayer):
    """A channel layer whose server takes messages and never answers."""

    async def send(self, channel: str, message: dict) -> None:
        return None

    async def receive(self, channel: str) -> dict:
        import asyncio

        await asyncio.Event().wait()
        raise AssertionError("unreachable")


class BrokenConnection:
    def cursor(self) -> object:
        raise OperationalError('connection to server at "db" failed: Connection refused')


def weights_dir_empty(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    empty = tmp_path / "no-models"
    empty.mkdir()
    settings.MODEL_DIR = str(empty)  # type: ignore[attr-defined]
    monkeypatch.setattr(weights_catalogue, "REPO_MODEL_DIR", empty)


def no_weights_anywhere(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    weights_dir_empty(settings, tmp_path, monkeypatch)
    settings.DEFAULT_MODEL = None  # type: ignore[attr-defined]


def weights_file_damaged(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    source = Path(settings.MODEL_DIR) / "u2netp.pth"  # type: ignore[attr-defined]
    weights_dir_empty(settings, tmp_path, monkeypatch)
    damaged = bytearray(source.read_bytes())
    damaged[len(damaged) // 2] ^= 0xFF  # one flipped byte inside a stored tensor
    (tmp_path / "no-models" / "u2netp.pth").write_bytes(bytes(damaged))


def queue_over_limit(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.JOB_QUEUE_LIMIT = 2  # type: ignore[attr-defined]
    make_job("someone")
    make_job("someone else", status=Job.Status.RUNNING)


def disk_budget_exceeded(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    settings.DISK_BUDGET_BYTES = 1000  # type: ignore[attr-defined]
    make_image("someone")  # 1234 bytes


def disk_full(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.disk_usage
    monkeypatch.setattr(
        operations.shutil, "disk_usage", lambda path: real(path)._replace(free=10_000_000)
    )


def channel_layer_unreachable(
    settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings.CHANNEL_LAYERS = {  # type: ignore[attr-defined]
        "default": {"BACKEND": f"{__name__}.UnreachableLayer"}
    }


def channel_layer_silent(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operations, "CHANNEL_TIMEOUT_S", 0.2)
    settings.CHANNEL_LAYERS = {"default": {"BACKEND": f"{__name__}.SilentLayer"}}  # type: ignore[attr-defined]


def database_down(settings: object, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(operations, "connection", BrokenConnection())


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("breakage", "failing", "detail"),
    [
        (weights_dir_empty, "weights", "u2netp.pth is not in"),
        (weights_dir_empty, "weights", "Run `python manage.py fetch_models u2netp`"),
        # The engine says what is missing; the app adds what to do about it.
        (
            no_weights_anywhere,
            "weights",
            "No model weights found (looked for u2net.pth and u2netp.pth in ",
        ),
        (no_weights_anywhere, "weights", "Run `python manage.py fetch_models` to download them"),
        (no_weights_anywhere, "weights", "or set BGREMOVER_MODEL_DIR to a directory that holds"),
        (weights_file_damaged, "weights", "fails its CRC check"),
        (queue_over_limit, "queue", "2 queued or running, JOB_QUEUE_LIMIT 2"),
        (disk_budget_exceeded, "disk", "of DISK_BUDGET_BYTES 0.0 MB"),
        (disk_full, "disk", "10.0 MB free on MEDIA_ROOT"),
        (channel_layer_unreachable, "channel_layer", "ConnectionRefusedError: Connect call"),
        (channel_layer_silent, "channel_layer", "no answer within 0.2 s"),
        (database_down, "database", "OperationalError: connection to server"),
    ],
)
def test_readyz_answers_503_naming_the_failing_check(
    client: Client,
    ready: None,
    settings: object,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    breakage: object,
    failing: str,
    detail: str,
) -> None:
    breakage(settings, tmp_path, monkeypatch)  # type: ignore[operator]
    status, checks = readiness(client)
    assert status == 503
    assert {name for name, check in checks.items() if not check["ok"]} == {failing}, checks
    assert detail in checks[failing]["detail"]


def test_the_weights_check_does_not_import_torch(u2netp_weights: Path, tmp_path: Path) -> None:
    code = (
        "import sys, django; django.setup()\n"
        "from editor.operations import check_weights\n"
        "check = check_weights()\n"
        "print(check.ok, 'torch' in sys.modules)\n"
    )
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "bgremover.test_settings",
        "DATA_DIR": str(tmp_path),
        "BGREMOVER_MODEL_DIR": str(u2netp_weights.parent),
        "BGREMOVER_MODEL": "u2netp",
    }
    done = subprocess.run(
        [sys.executable, "-c", code], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["True", "False"]
