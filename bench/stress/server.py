"""A fresh Daphne server for one scenario, its memory sampled from start to stop and stopped
early should its tree pass the run's memory cap."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from bench.loopback.memory import GB, TreeSampler, tree_rss_bytes
from bench.loopback.servers import ServerConfig, stop_tree, web_server
from bench.stress import log


@dataclass
class Server:
    """A scenario's running server, its sampler and its idle RSS (before the scenario)."""

    url: str
    process: subprocess.Popen[bytes]
    sampler: TreeSampler
    data_dir: Path
    log_path: Path
    baseline_rss_bytes: int


@contextmanager
def running_server(
    config: ServerConfig, name: str, overrides: dict[str, str] | None = None
) -> Iterator[Server]:
    """A fresh server for one scenario: its own DATA_DIR, migrated database and port."""
    with tempfile.TemporaryDirectory(prefix=f"stress-{name}-") as scratch:
        data_dir = Path(scratch) / "data"
        env = config.environment(data_dir, overrides or {})
        config.manage(env, "migrate", "--noinput", "-v", "0")
        with web_server(name, config, env) as proc:

            def over_cap(total: int) -> None:
                log(f"{name}: server tree at {total / GB:.1f} GB, over the cap: stopping it")
                stop_tree(proc.process)

            sampler = TreeSampler(
                proc.process.pid, limit_bytes=config.memory_cap_bytes, on_limit=over_cap
            )
            baseline = tree_rss_bytes(proc.process.pid)
            sampler.start()
            try:
                yield Server(proc.url, proc.process, sampler, data_dir, proc.log_path, baseline)
            finally:
                sampler.stop()
