"""Fixtures shared by every test room: where the read-only shared data lives."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_root() -> Path | None:
    """``$BGREMOVER_SHARED`` or ``../shared`` beside the checkout, if it exists."""
    candidate = Path(os.getenv("BGREMOVER_SHARED", str(REPO_ROOT.parent / "shared")))
    return candidate if candidate.is_dir() else None


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    root = shared_root()
    if root is None:
        pytest.skip("shared data not found: set BGREMOVER_SHARED or put it at ../shared")
    return root


@pytest.fixture(scope="session")
def u2netp_weights(shared_dir: Path) -> Path:
    path = shared_dir / "models" / "u2netp.pth"
    if not path.is_file():
        pytest.skip(f"real U²-NetP weights not found at {path}")
    return path


@pytest.fixture(scope="session")
def eval_dir(shared_dir: Path) -> Path:
    path = shared_dir / "eval"
    if not path.is_dir():
        pytest.skip(f"evaluation data not found at {path}")
    return path
