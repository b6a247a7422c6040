"""Fixtures shared by every test room: where the read-only shared data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def missing(reason: str) -> None:
    """Skip on a developer's machine without the shared data; fail in CI, which always has it
    (a CI run that skipped every real-weights test would prove nothing)."""
    if os.getenv("CI"):
        pytest.fail(f"{reason} (CI always has ../shared)")
    pytest.skip(reason)


def shared_root() -> Path | None:
    """``$BGREMOVER_SHARED`` or ``../shared`` beside the checkout, if it exists."""
    candidate = Path(os.getenv("BGREMOVER_SHARED", str(REPO_ROOT.parent / "shared")))
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    root = shared_root()
    if root is None:
        missing("shared data not found: set BGREMOVER_SHARED or put it at ../shared")
    return root


@pytest.fixture(scope="session")
def u2netp_weights(shared_dir: Path) -> Path:
    path = shared_dir / "models" / "u2netp.pth"
    if not path.is_file():
        missing(f"real U²-NetP weights not found at {path}")
    return path


@pytest.fixture(scope="session")
def eval_dir(shared_dir: Path) -> Path:
    path = shared_dir / "eval"
    if not path.is_dir():
        missing(f"evaluation data not found at {path}")
    return path
