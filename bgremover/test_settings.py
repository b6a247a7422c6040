"""Settings for the test suite: production settings with the development key allowed
and data kept out of the developer's own data directory."""

import os
import tempfile

os.environ.setdefault("ALLOW_DEV_SECRET_KEY", "1")
os.environ.setdefault("DATA_DIR", tempfile.mkdtemp(prefix="bgremover-test-"))
# Importing bgremover.asgi (websocket tests) must not start job workers inside pytest.
os.environ.setdefault("INPROCESS_WORKERS", "0")
# Nor the periodic purge (tests run it explicitly).
os.environ.setdefault("PURGE_INTERVAL_S", "0")

from bgremover.settings import *  # noqa: E402,F403
