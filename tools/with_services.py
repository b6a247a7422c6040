"""Run a command with throwaway PostgreSQL and/or Redis servers (tests/services.py):

    python tools/with_services.py postgres [redis] -- COMMAND [ARG…]

starts each named server on a free loopback port, exports its URL (``DATABASE_URL`` and
``TEST_DB=postgres`` for postgres; ``REDIS_URL`` and ``TEST_REDIS=1`` for redis), runs
COMMAND, stops the servers and removes their data, and exits with COMMAND's status.
``make test`` runs the web suite a second time this way, on PostgreSQL (Django's settings are
read before any pytest fixture, so the database has to exist before pytest starts).
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from contextlib import ExitStack
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from tests.services import ServiceMissing, postgres_server, redis_server  # noqa: E402

SERVICES = {"postgres": postgres_server, "redis": redis_server}
USAGE = "usage: with_services.py {postgres|redis}… -- COMMAND [ARG…]"


def _terminated(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)  # unwinds the ExitStack: the servers stop


def main(argv: list[str]) -> int:
    if "--" not in argv:
        print(USAGE, file=sys.stderr)
        return 2
    split = argv.index("--")
    names, command = argv[:split], argv[split + 1 :]
    if not names or not command or any(name not in SERVICES for name in names):
        print(USAGE, file=sys.stderr)
        return 2
    signal.signal(signal.SIGTERM, _terminated)
    env = dict(os.environ)
    with ExitStack() as stack:
        try:
            urls = {name: stack.enter_context(SERVICES[name]()) for name in dict.fromkeys(names)}
        except ServiceMissing as missing:
            print(f"with_services.py: {missing}", file=sys.stderr)
            return 3
        if "postgres" in urls:
            env["DATABASE_URL"] = urls["postgres"]
            env["TEST_DB"] = "postgres"
        if "redis" in urls:
            env["REDIS_URL"] = urls["redis"]
            env["TEST_REDIS"] = "1"
        shown = ", ".join(f"{name} on {url.rpartition('@')[2]}" for name, url in urls.items())
        print(f"with_services.py: {shown}", file=sys.stderr, flush=True)
        child = subprocess.Popen(command, env=env)
        try:
            return child.wait()
        except BaseException:
            child.terminate()
            try:
                child.wait(timeout=30)
            except subprocess.TimeoutExpired:
                child.kill()
            raise


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
