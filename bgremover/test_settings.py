"""Settings for the test suite: production settings with the development key allowed
and data kept out of the developer's own data directory.

The suite runs on SQLite with the in-memory channel layer, whatever the developer's shell
exports, unless TEST_DB=postgres (with DATABASE_URL) or TEST_REDIS=1 (with REDIS_URL) say
otherwise: ``tools/with_services.py`` sets both pairs for the servers it starts."""

import os
import tempfile

from django.core.exceptions import ImproperlyConfigured

TEST_DB = os.getenv("TEST_DB", "sqlite")
if TEST_DB not in ("sqlite", "postgres"):
    raise ImproperlyConfigured(f"TEST_DB must be sqlite or postgres, got {TEST_DB!r}")
if TEST_DB == "sqlite":
    os.environ.pop("DATABASE_URL", None)
    os.environ.pop("DB", None)
elif not os.getenv("DATABASE_URL", "").startswith(("postgres://", "postgresql://")):
    raise ImproperlyConfigured(
        "TEST_DB=postgres needs DATABASE_URL=postgres://…: run the tests through "
        "`python tools/with_services.py postgres -- pytest …`"
    )
if os.getenv("TEST_REDIS") != "1":
    os.environ.pop("REDIS_URL", None)

os.environ.setdefault("ALLOW_DEV_SECRET_KEY", "1")
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="bgremover-test-"))
# Importing bgremover.asgi (websocket tests) must not start job workers inside pytest.
os.environ.setdefault("INPROCESS_WORKERS", "0")
# Nor the periodic purge (tests run it explicitly).
os.environ.setdefault("PURGE_INTERVAL_S", "0")

from bgremover.settings import *  # noqa: E402,F403
