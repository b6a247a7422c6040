"""The engine reads no environment: BGREMOVER_DEVICE, BGREMOVER_PRECISION,
BGREMOVER_TORCH_THREADS and BGREMOVER_WEIGHTS_URL become settings, and the app hands those
to the engine with every job."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from editor.engine_process import removal_options
from tests.conftest import REPO_ROOT

ENGINE_VARIABLES = (
    "BGREMOVER_DEVICE",
    "BGREMOVER_PRECISION",
    "BGREMOVER_TORCH_THREADS",
    "BGREMOVER_WEIGHTS_URL",
    "BGREMOVER_MODEL_DIR",
)
SHOW = (
    "from bgremover import settings as s; "
    "print(repr((s.DEVICE, s.PRECISION, s.TORCH_THREADS, s.WEIGHTS_URL, s.MODEL_DIR)))"
)


def _settings(tmp_path: Path, **variables: str) -> subprocess.CompletedProcess[str]:
    """A fresh process's engine settings under these variables (and none of the others)."""
    env = {key: value for key, value in os.environ.items() if key not in ENGINE_VARIABLES}
    env.update(ALLOW_DEV_SECRET_KEY="1", DATA_DIR=str(tmp_path), **variables)
    return subprocess.run(
        [sys.executable, "-c", SHOW], cwd=REPO_ROOT, env=env, capture_output=True, text=True
    )


def test_defaults_when_nothing_is_set(tmp_path):
    shown = _settings(tmp_path)
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == "('auto', 'auto', None, None, None)"


def test_variables_become_settings(tmp_path):
    shown = _settings(
        tmp_path,
        BGREMOVER_DEVICE="cpu",
        BGREMOVER_PRECISION=" FP32 ",
        BGREMOVER_TORCH_THREADS="3",
        BGREMOVER_WEIGHTS_URL="http://mirror.example/weights",
        BGREMOVER_MODEL_DIR="/srv/models",
    )
    assert shown.returncode == 0, shown.stderr
    assert shown.stdout.strip() == (
        "('cpu', 'fp32', 3, 'http://mirror.example/weights', '/srv/models')"
    )


@pytest.mark.parametrize(
    "threads, message",
    [
        ("lots", "BGREMOVER_TORCH_THREADS must be an integer, got 'lots'"),
        ("0", "BGREMOVER_TORCH_THREADS must be at least 1, got 0"),
    ],
)
def test_unusable_thread_count_stops_the_start(tmp_path, threads, message):
    shown = _settings(tmp_path, BGREMOVER_TORCH_THREADS=threads)
    assert shown.returncode != 0
    assert message in shown.stderr


def test_jobs_hand_the_settings_to_the_engine(settings):
    settings.DEVICE = "cpu"
    settings.PRECISION = "fp32"
    settings.TORCH_THREADS = 2
    settings.WEIGHTS_URL = "http://mirror.example"
    options = removal_options("off")
    assert (options.device, options.precision, options.threads, options.weights_url) == (
        "cpu",
        "fp32",
        2,
        "http://mirror.example",
    )
