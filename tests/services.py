"""Throwaway PostgreSQL and Redis servers for tests: Debian's binaries, on 127.0.0.1, on free
ports, with their data in a temporary folder that is removed when they stop.

    with postgres_server() as url:   # postgres://bgremover:<password>@127.0.0.1:<port>/bgremover
        ...
    with redis_server() as url:      # redis://127.0.0.1:<port>/0
        ...

No system service is used or touched, and no fixed port. PostgreSQL refuses to run as root:
under root its processes run as the ``postgres`` user that Debian's package creates (or
``nobody``). ``ServiceMissing`` means the binaries are not installed (``make services-deps``
installs them); any other failure to start raises ``ServiceFailed`` with the server's log.
"""

from __future__ import annotations

import glob
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

START_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 30.0
DATABASE_NAME = "bgremover"
DATABASE_USER = "bgremover"
INSTALL_HINT = "run `make services-deps` (Debian's postgresql and redis-server)"


class ServiceMissing(RuntimeError):
    """The server's binaries are not installed."""


class ServiceFailed(RuntimeError):
    """The server was found but did not start."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def postgres_bin_dir() -> Path | None:
    """Debian's newest /usr/lib/postgresql/<version>/bin, else the folder of ``initdb`` on
    PATH; None when PostgreSQL's server binaries are not installed."""

    def version(path: str) -> tuple[int, ...]:
        name = Path(path).parent.parent.name
        return tuple(int(part) for part in name.split(".") if part.isdigit())

    found = sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), key=version)
    if found:
        return Path(found[-1]).parent
    initdb = shutil.which("initdb")
    if initdb and shutil.which("postgres"):
        return Path(os.path.realpath(initdb)).parent
    return None


def postgres_available() -> bool:
    return postgres_bin_dir() is not None


def redis_available() -> bool:
    return shutil.which("redis-server") is not None


def _service_user() -> pwd.struct_passwd | None:
    """The account PostgreSQL runs as: None (this one) unless this is root."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        try:
            return pwd.getpwnam(name)
        except KeyError:
            continue
    raise ServiceFailed("running as root, and there is no postgres or nobody user to run as")


def _tail(path: Path, chars: int = 4000) -> str:
    try:
        return path.read_text(errors="replace")[-chars:]
    except OSError:
        return "(no log)"


def _stop(child: subprocess.Popen[bytes], sig: int) -> None:
    if child.poll() is not None:
        return
    child.send_signal(sig)
    try:
        child.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        child.kill()
        child.wait()


@contextmanager
def _scratch(prefix: str, owner: pwd.struct_passwd | None) -> Iterator[Path]:
    """A temporary folder (in the system temp dir, which every user can reach), given to
    ``owner`` when there is one; removed with everything in it on exit."""
    folder = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        if owner is not None:
            os.chown(folder, owner.pw_uid, owner.pw_gid)
        yield folder
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _as(owner: pwd.struct_passwd | None) -> dict[str, object]:
    """Popen keyword arguments that run a child as ``owner`` (nothing when None)."""
    if owner is None:
        return {}
    return {"user": owner.pw_uid, "group": owner.pw_gid, "extra_groups": []}


@contextmanager
def postgres_server() -> Iterator[str]:
    """A fresh PostgreSQL cluster on a free loopback port with an empty database and a
    superuser (password authentication over TCP); yields its ``postgres://`` URL."""
    bin_dir = postgres_bin_dir()
    if bin_dir is None:
        raise ServiceMissing(f"PostgreSQL server binaries not found: {INSTALL_HINT}")
    owner = _service_user()
    password = secrets.token_hex(16)
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LC_ALL": "C", "LANG": "C"}
    with _scratch("bgremover-postgres-", owner) as root:
        data, sockets, log = root / "data", root / "sockets", root / "postgres.log"
        password_file = root / "password"
        password_file.write_text(password + "\n")
        if owner is not None:
            os.chown(password_file, owner.pw_uid, owner.pw_gid)
        initdb = subprocess.run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data),
                "-U",
                DATABASE_USER,
                f"--pwfile={password_file}",
                "--auth-host=scram-sha-256",
                "--auth-local=trust",
                "-E",
                "UTF8",
                "--locale=C",
                "--no-sync",
            ],
            cwd=root,
            env=env,
            capture_output=True,
            **_as(owner),  # type: ignore[arg-type]
        )
        if initdb.returncode != 0:
            raise ServiceFailed(f"initdb failed:\n{(initdb.stdout + initdb.stderr).decode()}")
        sockets.mkdir()
        if owner is not None:
            os.chown(sockets, owner.pw_uid, owner.pw_gid)
        for _attempt in range(3):
            port = free_port()
            command = [
                str(bin_dir / "postgres"),
                "-D",
                str(data),
                "-p",
                str(port),
                "-k",
                str(sockets),
                "-c",
                "listen_addresses=127.0.0.1",
                "-c",
                "max_connections=200",
                # A throwaway database: no need to survive a crash.
                "-c",
                "fsync=off",
                "-c",
                "synchronous_commit=off",
                "-c",
                "full_page_writes=off",
            ]
            with log.open("ab") as log_file:
                server = subprocess.Popen(
                    command,
                    cwd=root,
                    env=env,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                    **_as(owner),  # type: ignore[arg-type]
                )
            try:
                if _wait_for_postgres(bin_dir, server, port, env):
                    break
            except BaseException:
                _stop(server, signal.SIGINT)
                raise
            _stop(server, signal.SIGINT)  # lost the port to someone else: try another
        else:
            raise ServiceFailed(f"PostgreSQL did not start:\n{_tail(log)}")
        try:
            created = subprocess.run(
                [
                    str(bin_dir / "createdb"),
                    "-h",
                    "127.0.0.1",
                    "-p",
                    str(port),
                    "-U",
                    DATABASE_USER,
                    DATABASE_NAME,
                ],
                env={**env, "PGPASSWORD": password},
                capture_output=True,
                timeout=START_TIMEOUT_S,
            )
            if created.returncode != 0:
                raise ServiceFailed(
                    f"createdb failed: {(created.stdout + created.stderr).decode()}"
                )
            yield f"postgres://{DATABASE_USER}:{password}@127.0.0.1:{port}/{DATABASE_NAME}"
        finally:
            _stop(server, signal.SIGINT)  # PostgreSQL's "fast" shutdown


def _wait_for_postgres(
    bin_dir: Path, server: subprocess.Popen[bytes], port: int, env: dict[str, str]
) -> bool:
    """True once the server accepts connections; False when it exited (e.g. the port was
    taken meanwhile); ServiceFailed past START_TIMEOUT_S."""
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        ready = subprocess.run(
            [str(bin_dir / "pg_isready"), "-q", "-h", "127.0.0.1", "-p", str(port)],
            env=env,
            capture_output=True,
        )
        if ready.returncode == 0:
            return True
        time.sleep(0.1)
    raise ServiceFailed(f"PostgreSQL did not accept connections within {START_TIMEOUT_S:g} s")


@contextmanager
def redis_server() -> Iterator[str]:
    """A fresh redis-server on a free loopback port, persisting nothing; yields its URL."""
    binary = shutil.which("redis-server")
    if binary is None:
        raise ServiceMissing(f"redis-server not found: {INSTALL_HINT}")
    with _scratch("bgremover-redis-", None) as root:
        log = root / "redis.log"
        for _attempt in range(3):
            port = free_port()
            command = [
                binary,
                "--port",
                str(port),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
                "--dir",
                str(root),
                "--daemonize",
                "no",
                "--logfile",
                "",
            ]
            with log.open("ab") as log_file:
                server = subprocess.Popen(
                    command,
                    cwd=root,
                    stdout=log_file,
                    stderr=subprocess.STDOUT,
                    start_new_session=True,
                )
            try:
                if _wait_for_redis(server, port):
                    break
            except BaseException:
                _stop(server, signal.SIGTERM)
                raise
            _stop(server, signal.SIGTERM)
        else:
            raise ServiceFailed(f"redis-server did not start:\n{_tail(log)}")
        try:
            yield f"redis://127.0.0.1:{port}/0"
        finally:
            _stop(server, signal.SIGTERM)


def _wait_for_redis(server: subprocess.Popen[bytes], port: int) -> bool:
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if server.poll() is not None:
            return False
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1) as connection:
                connection.sendall(b"PING\r\n")
                if connection.recv(64).startswith(b"+PONG"):
                    return True
        except OSError:
            pass
        time.sleep(0.1)
    raise ServiceFailed(f"redis-server did not answer within {START_TIMEOUT_S:g} s")
