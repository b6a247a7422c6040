"""Fixtures shared by every test room: where the read-only shared data lives, and throwaway
PostgreSQL and Redis servers (tests/services.py)."""

from __future__ import annotations

import gc
import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests import services

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


def service_missing(reason: str) -> None:
    """Skip where PostgreSQL or Redis is not installed; fail in CI, whose `make test`
    installs them (`make services-deps`)."""
    if os.getenv("CI"):
        pytest.fail(f"{reason} (CI installs them: make services-deps)")
    pytest.skip(reason)


@pytest.fixture(scope="session")
def postgres_url() -> Iterator[str]:
    """A throwaway PostgreSQL for the session: ``postgres://user:password@127.0.0.1:port/name``
    with an empty database, its superuser's. For processes the tests start; the suite's own
    database is chosen before fixtures run (tools/with_services.py)."""
    try:
        server = services.postgres_server()
        url = server.__enter__()
    except services.ServiceMissing as exc:
        service_missing(str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session")
def redis_url() -> Iterator[str]:
    """A throwaway redis-server for the session: ``redis://127.0.0.1:port/0``."""
    try:
        server = services.redis_server()
        url = server.__enter__()
    except services.ServiceMissing as exc:
        service_missing(str(exc))
    try:
        yield url
    finally:
        server.__exit__(None, None, None)


@pytest.fixture(scope="session", autouse=True)
def close_stray_postgres_sessions(request: pytest.FixtureRequest) -> Iterator[None]:
    """On PostgreSQL (TEST_DB=postgres), before pytest-django drops the test database: a
    thread a test started (a job run beside a request) keeps its connection until the garbage
    collector finds it, and PostgreSQL refuses to drop a database someone is connected to."""
    if os.getenv("TEST_DB") != "postgres":
        yield
        return
    request.getfixturevalue("django_db_setup")  # set up before, so torn down after, this
    blocker = request.getfixturevalue("django_db_blocker")
    yield
    gc.collect()
    from django.db import connection

    with blocker.unblock(), connection.cursor() as cursor:
        cursor.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    connection.close()
