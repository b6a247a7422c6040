"""DATABASE_URL: PostgreSQL and SQLite URLs become DATABASES entries; anything else stops the
process at start with a message that says what is accepted (and never echoes a password)."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from django.core.exceptions import ImproperlyConfigured

from bgremover.settings import SQLITE_OPTIONS, database_from_url
from tests.conftest import REPO_ROOT


def test_a_postgres_url() -> None:
    assert database_from_url("postgres://app:s3cret@db.example:6543/bgremover") == {
        "ENGINE": "django.db.backends.postgresql",
        "NAME": "bgremover",
        "USER": "app",
        "PASSWORD": "s3cret",
        "HOST": "db.example",
        "PORT": "6543",
        "OPTIONS": {},
    }


def test_postgresql_scheme_escapes_options_and_a_socket_folder() -> None:
    entry = database_from_url("postgresql://app:p%40ss%2Fw%3Ard@%2Frun%2Fpostgresql/my%20db")
    assert (entry["PASSWORD"], entry["HOST"], entry["PORT"], entry["NAME"]) == (
        "p@ss/w:rd",
        "/run/postgresql",
        "",
        "my db",
    )
    entry = database_from_url("postgres://app@[::1]/bgremover?sslmode=require&connect_timeout=5")
    assert entry["HOST"] == "::1" and entry["USER"] == "app" and entry["PASSWORD"] == ""
    assert entry["OPTIONS"] == {"sslmode": "require", "connect_timeout": "5"}


def test_sqlite_urls_relative_and_absolute() -> None:
    assert database_from_url("sqlite:///data/app.sqlite3") == {
        "ENGINE": "django.db.backends.sqlite3",
        "NAME": "data/app.sqlite3",
        "OPTIONS": SQLITE_OPTIONS,
    }
    assert database_from_url("sqlite:////srv/bgremover/app.sqlite3")["NAME"] == (
        "/srv/bgremover/app.sqlite3"
    )


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("mysql://root:hunter2@db/app", "DATABASE_URL mysql://… is not supported"),
        ("postgres://app:pw@db:5432/", "must name one database"),
        ("postgres://app:pw@db:5432/a/b", "must name one database"),
        ("postgres://app:pw@db:port/app", "not a valid URL"),
        ("sqlite:///", "names no SQLite file"),
        ("sqlite://host/file.db", "is not supported"),
        ("just-a-name", "DATABASE_URL without a scheme is not supported"),
    ],
)
def test_anything_else_is_refused_clearly(url: str, message: str) -> None:
    with pytest.raises(ImproperlyConfigured, match=message) as refused:
        database_from_url(url)
    assert "hunter2" not in str(refused.value) and "pw@" not in str(refused.value)
    assert "postgres://USER:PASSWORD@HOST:PORT/NAME or sqlite:///PATH" in str(
        refused.value
    ) or "not a valid URL" in str(refused.value)


@pytest.mark.parametrize(
    ("variables", "message"),
    [
        ({"DATABASE_URL": "mysql://root:hunter2@db/app"}, "is not supported"),
        ({"DB": "oracle"}, "DB must be sqlite or postgres"),
    ],
)
def test_the_server_refuses_to_start_with_an_unsupported_database(
    variables: dict[str, str], message: str
) -> None:
    env = {
        key: value
        for key, value in os.environ.items()
        if key not in ("DATABASE_URL", "DB", "TEST_DB")
    }
    env.update(DJANGO_SETTINGS_MODULE="bgremover.settings", ALLOW_DEV_SECRET_KEY="1", **variables)
    check = subprocess.run(
        [sys.executable, str(REPO_ROOT / "manage.py"), "check"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert check.returncode != 0
    assert "ImproperlyConfigured: " in check.stderr and message in check.stderr
    assert "hunter2" not in check.stderr
