"""The memory of server process trees, read from ``/proc``: a scan for a root's descendants,
each process's RSS, and two samplers in threads (one sum per tree; one peak per process)."""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Self

GB = 1024**3
MB = 1024**2

TREE_SAMPLE_INTERVAL_S = 0.05
ROLE_SAMPLE_INTERVAL_S = 0.25


def _parent_of(pid: int) -> int | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # The command name sits in parentheses and may itself hold spaces or parentheses.
    return int(stat.rsplit(")", 1)[1].split()[1])


def process_tree(root: int) -> list[int]:
    """``root`` and all its living descendants (a scan of /proc: kernels here lack the
    ``children`` files)."""
    children: dict[int, list[int]] = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            parent = _parent_of(int(entry))
            if parent is not None:
                children.setdefault(parent, []).append(int(entry))
    tree, queue = [], [root]
    while queue:
        pid = queue.pop()
        tree.append(pid)
        queue.extend(children.get(pid, []))
    return tree


def rss_bytes(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    except (OSError, ValueError):
        pass
    return 0  # gone, or a zombie (no VmRSS line)


def tree_rss_bytes(root: int) -> int:
    return sum(rss_bytes(pid) for pid in process_tree(root))


class PeriodicSampler:
    """Calls ``sample()`` in a thread every ``interval_s`` from ``start()`` to ``stop()``."""

    def __init__(self, interval_s: float, name: str) -> None:
        self.interval_s = interval_s
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)

    def sample(self) -> object:
        raise NotImplementedError

    def _run(self) -> None:
        while not self._stop.is_set():
            self.sample()
            self._stop.wait(self.interval_s)

    def start(self) -> Self:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


class TreeSampler(PeriodicSampler):
    """Samples the summed RSS of a process tree in a thread; keeps the peak and the largest
    process count. ``on_limit`` is called once if the sum passes ``limit_bytes``."""

    def __init__(
        self,
        root: int,
        interval_s: float = TREE_SAMPLE_INTERVAL_S,
        limit_bytes: int | None = None,
        on_limit: Callable[[int], None] | None = None,
    ) -> None:
        super().__init__(interval_s, "rss-sampler")
        self.root = root
        self.limit_bytes = limit_bytes
        self.on_limit = on_limit
        self.peak_bytes = 0
        self.peak_processes = 0
        self.limit_hit = False
        self._window_peak = 0
        self._lock = threading.Lock()

    def sample(self) -> None:
        tree = process_tree(self.root)
        total = sum(rss_bytes(pid) for pid in tree)
        with self._lock:
            self.samples += 1
            self.peak_bytes = max(self.peak_bytes, total)
            self._window_peak = max(self._window_peak, total)
        self.peak_processes = max(self.peak_processes, len(tree))
        if self.limit_bytes and total > self.limit_bytes and not self.limit_hit:
            self.limit_hit = True
            if self.on_limit is not None:
                self.on_limit(total)

    def take_window_peak(self) -> int:
        """The peak since the previous call (or the start); a new window begins. Tells which
        phase of a scenario (the uploads, the jobs) the memory went to."""
        with self._lock:
            peak, self._window_peak = self._window_peak, 0
        return peak


def process_label(pid: int) -> str:
    """What a process is, from its command line: ``daphne``, ``db_worker``, ``engine`` (a
    spawned multiprocessing child: the job engine), ``resource tracker`` or the program."""
    try:
        argv = Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0")
    except OSError:
        return "?"
    text = b" ".join(argv).decode(errors="replace")
    if "spawn_main" in text:
        return "engine"
    if "resource_tracker" in text:
        return "resource tracker"
    if "daphne" in text:
        return "daphne"
    if "db_worker" in text:
        return "db_worker"
    return Path(argv[0].decode(errors="replace")).name or "?"


class RoleSampler(PeriodicSampler):
    """Samples the RSS of each process of each role's tree (the same /proc scan) in a
    thread: the peak of every process, its label, and the peak of each tree's sum."""

    def __init__(self, roles: dict[str, int], interval_s: float = ROLE_SAMPLE_INTERVAL_S) -> None:
        super().__init__(interval_s, "role-sampler")
        self.roles = dict(roles)
        self.process_peaks: dict[int, int] = {}
        self.process_roles: dict[int, tuple[str, str]] = {}
        self.tree_peaks: dict[str, int] = dict.fromkeys(roles, 0)

    def sample(self) -> dict[str, int]:
        """One pass; returns each role's tree sum now."""
        sums: dict[str, int] = {}
        for role, root in self.roles.items():
            total = 0
            for pid in process_tree(root):
                rss = rss_bytes(pid)
                if rss == 0:
                    continue  # gone, or a zombie
                if pid not in self.process_roles:
                    self.process_roles[pid] = (role, process_label(pid))
                self.process_peaks[pid] = max(self.process_peaks.get(pid, 0), rss)
                total += rss
            sums[role] = total
            self.tree_peaks[role] = max(self.tree_peaks.get(role, 0), total)
        self.samples += 1
        return sums

    def peaks(self) -> list[dict[str, Any]]:
        """Per role and kind of process: the largest single process's peak and how many
        processes of that kind were seen (an engine child is replaced now and then)."""
        grouped: dict[tuple[str, str], list[int]] = {}
        for pid, key in self.process_roles.items():
            grouped.setdefault(key, []).append(pid)
        rows = []
        for role in self.roles:
            for (owner, label), pids in sorted(grouped.items()):
                if owner == role:
                    rows.append(
                        {
                            "role": role,
                            "process": label,
                            "peak_bytes": max(self.process_peaks[p] for p in pids),
                            "processes_seen": len(pids),
                        }
                    )
            rows.append(
                {
                    "role": role,
                    "process": "tree (sum)",
                    "peak_bytes": self.tree_peaks.get(role, 0),
                    "processes_seen": sum(len(p) for (o, _), p in grouped.items() if o == role),
                }
            )
        return rows
