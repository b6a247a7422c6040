"""Real servers from a checkout: its environment and ``manage.py``, Daphne on a free loopback
port, any server process in a session of its own with its log in the run's folder, and the
stop that leaves none of its tree behind."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bench.loopback.client import Client
from bench.loopback.memory import process_tree

SERVER_START_TIMEOUT_S = 90  # the first request imports the engine and loads the weights
# As `make run` and deploy/ start Daphne: 30 s for a websocket handshake under load.
DAPHNE_OPTIONS = ("--websocket_connect_timeout", "30")


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def settings_names(repo: Path) -> list[str]:
    """The environment variables the checkout's settings read (read as text, not imported)."""
    try:
        text = (repo / "bgremover" / "settings.py").read_text()
    except OSError:
        return []
    return sorted(
        set(re.findall(r"""\b(?:getenv|envint|envbool|envlist)\(\s*["'](\w+)["']""", text))
    )


def limits_off_env(repo: Path) -> dict[str, str]:
    """Every rate limit the checkout knows of, turned off (the soak measures memory, not the
    limits). Names a server does not read are harmless."""
    names = {"RATE_LIMIT_UPLOADS", "RATE_LIMIT_DOWNLOADS"}
    names.update(name for name in settings_names(repo) if name.startswith("RATE_LIMIT"))
    return dict.fromkeys(sorted(names), "off")


@dataclass
class ServerConfig:
    """How a run starts its servers: which checkout, with which Python and weights, where the
    logs go, and the memory cap (0: none) of bench.stress's sampler."""

    repo: Path
    python: str
    model_dir: Path
    static_root: Path
    log_dir: Path
    memory_cap_bytes: int
    extra_env: dict[str, str] = field(default_factory=dict)

    def environment(self, data_dir: Path, overrides: dict[str, str]) -> dict[str, str]:
        path = os.pathsep.join(filter(None, [str(self.repo), os.getenv("PYTHONPATH", "")]))
        return {
            **os.environ,
            "DJANGO_SETTINGS_MODULE": "bgremover.settings",
            "PYTHONPATH": path,  # this repo's code, whatever checkout the venv was built from
            "PYTHONUNBUFFERED": "1",
            "DEBUG": "0",
            "SECRET_KEY": secrets.token_urlsafe(50),
            "ALLOW_DEV_SECRET_KEY": "1",
            "DATA_DIR": str(data_dir),
            "STATIC_ROOT": str(self.static_root),
            "BGREMOVER_MODEL_DIR": str(self.model_dir),
            **self.extra_env,
            **overrides,
        }

    def manage(self, env: dict[str, str], *args: str) -> str:
        done = subprocess.run(
            [self.python, "manage.py", *args],
            cwd=self.repo,
            env=env,
            capture_output=True,
            text=True,
            timeout=600,
        )
        if done.returncode != 0:
            lines = done.stderr.strip().splitlines() or ["(no output)"]
            raise RuntimeError(
                f"manage.py {' '.join(args)} failed: {lines[-1]}\n" + "\n".join(lines[-40:])
            )
        return done.stdout


def prepare(config: ServerConfig) -> dict[str, Any]:
    """Collect the static files once (DEBUG=0 serves them from a manifest) and check that
    this Python imports the repo's code, not the checkout the venv was installed from."""
    with tempfile.TemporaryDirectory(prefix="stress-prepare-") as scratch:
        env = config.environment(Path(scratch), {})
        config.manage(env, "collectstatic", "--noinput", "-v", "0")
        probe = subprocess.run(
            [config.python, "-c", "import bgremover, editor; print(editor.__file__)"],
            cwd=config.repo,
            env=env,
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
    if not Path(probe).resolve().is_relative_to(config.repo.resolve()):
        raise RuntimeError(f"the server would import {probe}, not {config.repo}'s code")
    return {"editor_module": probe}


def stop_tree(process: subprocess.Popen[bytes]) -> None:
    """SIGTERM to the server's process group, then SIGKILL to the group and to any
    descendant that left it: nothing the scenario started may outlive it."""
    if process.poll() is not None:
        return
    tree = process_tree(process.pid)
    try:
        os.killpg(process.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        pass
    for pid in [process.pid, *tree]:
        try:
            if pid == process.pid:
                os.killpg(pid, signal.SIGKILL)
            else:
                os.kill(pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
    process.wait(timeout=10)


def wait_until_up(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the server exited early:\n{tail}")
        if Client(url, timeout_s=5).open_page().status == 200:
            return
        time.sleep(0.3)
    raise RuntimeError(f"the server did not answer GET / within {SERVER_START_TIMEOUT_S} s")


@dataclass
class Proc:
    """One started server process: its role (the name of its log), and its URL if it serves."""

    role: str
    process: subprocess.Popen[bytes]
    log_path: Path
    url: str = ""


@contextmanager
def started(
    role: str, command: list[str], config: ServerConfig, env: dict[str, str]
) -> Iterator[Proc]:
    """A server process in a session of its own (so its whole tree can be stopped), its
    output in the run's log folder; its whole tree stopped on exit."""
    log_path = config.log_dir / f"{role}.log"
    with log_path.open("wb") as log_file:
        process = subprocess.Popen(
            command,
            cwd=config.repo,
            env=env,
            stdout=log_file,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        try:
            yield Proc(role, process, log_path)
        finally:
            stop_tree(process)


@contextmanager
def web_server(role: str, config: ServerConfig, env: dict[str, str]) -> Iterator[Proc]:
    port = free_port()
    command = [config.python, "-m", "daphne", *DAPHNE_OPTIONS, "-b", "127.0.0.1", "-p", str(port)]
    with started(role, [*command, "bgremover.asgi:application"], config, env) as proc:
        proc.url = f"http://127.0.0.1:{port}"
        wait_until_up(proc.url, proc.process, proc.log_path)
        yield proc
