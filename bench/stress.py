"""``python -m bench.stress``: hostile-load figures from a real Daphne server on loopback.

    python -m bench.stress [--only tiff,bombs,burst,throughput,soak] [--out DIR] [--repo PATH]

Each scenario gets a fresh server (its own DATA_DIR, database and port) started from
``--repo`` (default: this checkout) with this Python, so another checkout (an older commit in
a worktree) can be measured with the same venv. The harness speaks HTTP only and imports
nothing of the server's code: it can be copied elsewhere and pointed at any checkout.

The memory figures are the sum of the RSS of the Daphne process and all its descendants,
sampled every 50 ms. Results go to ``<out>/stress-<timestamp>.json`` and ``.txt`` and the
servers' logs to ``<out>/stress-<timestamp>-logs/``. ``make stress STRESS_ARGS=...`` runs it.
"""

from __future__ import annotations

import argparse
import datetime
import email.utils
import io
import json
import os
import re
import secrets
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import threading
import time
import uuid
import zlib
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from http.client import HTTPConnection, HTTPException
from http.cookies import CookieError, SimpleCookie
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

HARNESS_ROOT = Path(__file__).resolve().parent.parent
SCENARIOS = ("tiff", "bombs", "burst", "throughput", "soak")
GB = 1024**3
MB = 1024**2

SERVER_START_TIMEOUT_S = 90  # the first request imports the engine and loads the weights
SAMPLE_INTERVAL_S = 0.05
# As `make run` and deploy/ start Daphne: 30 s for a websocket handshake under load.
DAPHNE_OPTIONS = ("--websocket_connect_timeout", "30")
# tiff: the hostile upload and the pings of the page beside it must each answer within this.
TIFF_ANSWER_TARGET_S = 5.0
TIFF_PAGES = 60_000
PING_INTERVAL_S = 0.2
PING_TIMEOUT_S = 30.0
# bombs: just under the default 50 MP upload limit, so the old server accepts them all.
BOMB_SIDE = 7000
BOMB_CLIENTS = 10
BOMB_MEMORY_TARGET = 4 * GB
BOMB_EXPECTED = {201, 429, 503}
BURST_UPLOADS = 80
BURST_CONCURRENCY = 8
THROUGHPUT_PHOTOS = 30
THROUGHPUT_CLIENTS = 5
SOAK_SAMPLE_EVERY = 50
SOAK_BATCH = 10
# RSS moves by a few percent with the allocator's whims; a leak grows with every job.
SOAK_GROWTH_TARGET = 0.05
# The longest a well-behaved client waits when told to come back later.
MAX_RETRY_WAIT_S = 60.0


def log(message: str) -> None:
    print(f"[stress] {message}", file=sys.stderr, flush=True)


# --------------------------------------------------------------------------- test files


def many_page_tiff(pages: int = TIFF_PAGES) -> bytes:
    """A little-endian TIFF of ``pages`` 1×1 bilevel pages, one IFD each (54 bytes a page).

    Written by hand because Pillow's ``save_all`` takes minutes for 60,000 pages. Every page
    points at the same single pixel byte after the last IFD; the chain ends with offset 0."""
    ifd_size = 2 + 4 * 12 + 4
    first = 8
    pixel = first + pages * ifd_size
    ifd = struct.Struct("<H" + "HHII" * 4 + "I")
    out = io.BytesIO()
    out.write(struct.pack("<2sHI", b"II", 42, first))
    for page in range(pages):
        following = first + (page + 1) * ifd_size if page + 1 < pages else 0
        out.write(
            ifd.pack(
                4,
                *(256, 3, 1, 1),  # ImageWidth, SHORT
                *(257, 3, 1, 1),  # ImageLength, SHORT
                *(273, 4, 1, pixel),  # StripOffsets, LONG
                *(279, 4, 1, 1),  # StripByteCounts, LONG
                following,
            )
        )
    out.write(b"\x00")
    return out.getvalue()


def _png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def gradient_png(width: int = BOMB_SIDE, height: int = BOMB_SIDE) -> bytes:
    """An RGB PNG with a left-to-right colour gradient, small on disk, huge decoded.

    The first row is stored plain, every other row with the "Up" filter (all zero bytes),
    so 147 MB of pixels at 7000×7000 deflate to a few hundred KB without ever being held."""
    ramp = bytes(x * 255 // max(1, width - 1) for x in range(width))
    first_row = bytes(channel for r in ramp for channel in (r, 128, 255 - r))
    compressor = zlib.compressobj(9)
    parts = [compressor.compress(b"\x00" + first_row)]
    up_rows = (b"\x02" + bytes(3 * width)) * 64
    remaining = height - 1
    while remaining > 0:
        rows = min(64, remaining)
        parts.append(compressor.compress(up_rows[: rows * (3 * width + 1)]))
        remaining -= rows
    parts.append(compressor.flush())
    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + _png_chunk(b"IHDR", header)
        + _png_chunk(b"IDAT", b"".join(parts))
        + _png_chunk(b"IEND", b"")
    )


def small_jpeg(side: int, variant: int = 0) -> bytes:
    """A small photo-like JPEG: a disc on a two-colour background; ``variant`` changes both."""
    from PIL import Image, ImageDraw  # the only third-party import: for encoding test files

    hue = (variant * 67) % 256
    image = Image.new("RGB", (side, side), (hue, 200 - hue // 2, 90))
    draw = ImageDraw.Draw(image)
    draw.rectangle((0, side // 2, side, side), fill=(40, 60 + hue // 3, 120))
    inset = side // 4 + variant % 3
    draw.ellipse((inset, inset, side - inset, side - inset), fill=(230, 120, 255 - hue))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=90)
    return out.getvalue()


# --------------------------------------------------------------------------- client


@dataclass
class Answer:
    """One HTTP exchange; ``status`` is None when no answer came (timeout, refused, reset)."""

    status: int | None
    elapsed_s: float
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    error: str = ""

    @property
    def retry_after_s(self) -> float | None:
        """Retry-After in seconds (delta-seconds or an HTTP date), None when absent."""
        value = self.headers.get("retry-after", "").strip()
        if not value:
            return None
        if value.isdigit():
            return float(value)
        try:
            when = email.utils.parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        now = datetime.datetime.now(datetime.UTC)
        return max(0.0, (when - now).total_seconds())

    def json(self) -> dict[str, Any] | None:
        try:
            value = json.loads(self.body)
        except ValueError:
            return None
        return value if isinstance(value, dict) else None

    def summary(self) -> dict[str, Any]:
        document = self.json() or {}
        return {
            "status": self.status,
            "elapsed_s": round(self.elapsed_s, 3),
            "retry_after": self.headers.get("retry-after"),
            "error": self.error or str(document.get("error", ""))[:300],
        }


_META_TOKEN = re.compile(rb'name="csrf-token"\s+content="([^"]+)"')
_FORM_TOKEN = re.compile(rb'name="csrfmiddlewaretoken"\s+value="([^"]+)"')


class Client:
    """One browser without a browser: its own cookie jar, the CSRF token on every POST.

    A "cookie-less" stranger is a new Client for each GET / + upload sequence."""

    def __init__(self, base_url: str, timeout_s: float = 60.0) -> None:
        parts = urlsplit(base_url)
        self.host = parts.hostname or "127.0.0.1"
        self.port = parts.port or 80
        self.timeout_s = timeout_s
        self.cookies: dict[str, str] = {}
        self.page_token = ""

    def request(
        self,
        method: str,
        path: str,
        body: bytes = b"",
        headers: dict[str, str] | None = None,
        timeout_s: float | None = None,
    ) -> Answer:
        sent = {"Host": f"{self.host}:{self.port}"}
        if self.cookies:
            sent["Cookie"] = "; ".join(f"{k}={v}" for k, v in self.cookies.items())
        if method != "GET":
            sent["X-CSRFToken"] = self.cookies.get("csrftoken") or self.page_token
        started = time.monotonic()
        connection = HTTPConnection(self.host, self.port, timeout=timeout_s or self.timeout_s)
        try:
            try:
                connection.request(method, path, body=body, headers={**sent, **(headers or {})})
            except (BrokenPipeError, ConnectionResetError):
                pass  # the server answered (e.g. 413) and closed before the body was sent
            response = connection.getresponse()
            data = response.read()
        except (OSError, HTTPException) as exc:
            reason = "timeout" if isinstance(exc, TimeoutError) else type(exc).__name__
            return Answer(None, time.monotonic() - started, error=f"{reason}: {exc}"[:300])
        finally:
            connection.close()
        elapsed = time.monotonic() - started
        for header in response.headers.get_all("Set-Cookie") or []:
            try:
                for name, morsel in SimpleCookie(header).items():
                    self.cookies[name] = morsel.value
            except CookieError:
                continue
        answer_headers = {name.lower(): value for name, value in response.getheaders()}
        return Answer(response.status, elapsed, answer_headers, data)

    def open_page(self, timeout_s: float | None = None) -> Answer:
        """GET /: the CSRF cookie (and, on some versions, the session) for what follows."""
        answer = self.request("GET", "/", timeout_s=timeout_s)
        # Should the cookie not come, the page's token is the next best thing to send.
        match = _META_TOKEN.search(answer.body) or _FORM_TOKEN.search(answer.body)
        if match:
            self.page_token = match.group(1).decode()
        return answer

    def upload(self, name: str, data: bytes, timeout_s: float | None = None) -> Answer:
        boundary = uuid.uuid4().hex
        body = (
            (
                f'--{boundary}\r\nContent-Disposition: form-data; name="file"; '
                f'filename="{name}"\r\nContent-Type: application/octet-stream\r\n\r\n'
            ).encode()
            + data
            + f"\r\n--{boundary}--\r\n".encode()
        )
        headers = {"Content-Type": f"multipart/form-data; boundary={boundary}"}
        return self.request("POST", "/upload/", body, headers, timeout_s=timeout_s)

    def job_state(self, status_url: str, timeout_s: float = 30.0) -> dict[str, Any] | None:
        answer = self.request("GET", status_url, timeout_s=timeout_s)
        return answer.json() if answer.status == 200 else None


def stranger_upload(
    base_url: str, name: str, data: bytes, timeout_s: float
) -> tuple[Client, Answer]:
    """A fresh cookie jar: GET / for the token, then one upload."""
    client = Client(base_url, timeout_s)
    client.open_page()
    return client, client.upload(name, data, timeout_s)


@dataclass
class Tracked:
    """A job accepted by the server, polled with the cookies of the client that sent it."""

    client: Client
    status_url: str
    final: dict[str, Any] | None = None
    finished_at: float | None = None


def track(client: Client, answer: Answer) -> Tracked | None:
    document = answer.json() or {}
    urls = document.get("urls")
    if answer.status != 201 or not isinstance(urls, dict) or not urls.get("status"):
        return None
    return Tracked(client, str(urls["status"]))


def wait_for_jobs(jobs: list[Tracked], deadline: float, interval_s: float = 0.5) -> None:
    """Poll every unfinished job round-robin until each is finished or the deadline passes."""
    pending = [job for job in jobs if job.final is None]
    while pending and time.monotonic() < deadline:
        for job in pending:
            state = job.client.job_state(job.status_url)
            if state is not None and state.get("finished"):
                job.final, job.finished_at = state, time.monotonic()
        pending = [job for job in pending if job.final is None]
        if pending:
            time.sleep(interval_s)


def job_outcomes(jobs: list[Tracked]) -> dict[str, Any]:
    states = Counter(
        "unfinished" if job.final is None else str(job.final.get("status")) for job in jobs
    )
    reasons = Counter(
        str(job.final.get("error") or "(no reason given)")[:200]
        for job in jobs
        if job.final is not None and job.final.get("status") != "done"
    )
    return {"states": dict(states), "failure_reasons": dict(reasons)}


# --------------------------------------------------------------------------- memory


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


class TreeSampler:
    """Samples the summed RSS of a process tree in a thread; keeps the peak and the largest
    process count. ``on_limit`` is called once if the sum passes ``limit_bytes``."""

    def __init__(
        self,
        root: int,
        interval_s: float = SAMPLE_INTERVAL_S,
        limit_bytes: int | None = None,
        on_limit: Callable[[int], None] | None = None,
    ) -> None:
        self.root = root
        self.interval_s = interval_s
        self.limit_bytes = limit_bytes
        self.on_limit = on_limit
        self.peak_bytes = 0
        self.peak_processes = 0
        self.samples = 0
        self.limit_hit = False
        self._window_peak = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="rss-sampler", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
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
            self._stop.wait(self.interval_s)

    def take_window_peak(self) -> int:
        """The peak since the previous call (or the start); a new window begins. Tells which
        phase of a scenario (the uploads, the jobs) the memory went to."""
        with self._lock:
            peak, self._window_peak = self._window_peak, 0
        return peak

    def start(self) -> TreeSampler:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)


# --------------------------------------------------------------------------- server


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def shared_root() -> Path:
    return Path(os.getenv("BGREMOVER_SHARED") or HARNESS_ROOT.parent / "shared")


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


@dataclass
class Server:
    url: str
    process: subprocess.Popen[bytes]
    sampler: TreeSampler
    data_dir: Path
    log_path: Path
    baseline_rss_bytes: int


def _stop_tree(process: subprocess.Popen[bytes]) -> None:
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


@contextmanager
def running_server(
    config: ServerConfig, name: str, overrides: dict[str, str] | None = None
) -> Iterator[Server]:
    """A fresh server for one scenario: its own DATA_DIR, migrated database and port."""
    with tempfile.TemporaryDirectory(prefix=f"stress-{name}-") as scratch:
        data_dir = Path(scratch) / "data"
        env = config.environment(data_dir, overrides or {})
        config.manage(env, "migrate", "--noinput", "-v", "0")
        port = free_port()
        log_path = config.log_dir / f"{name}.log"
        command = [
            config.python,
            "-m",
            "daphne",
            *DAPHNE_OPTIONS,
            "-b",
            "127.0.0.1",
            "-p",
            str(port),
            "bgremover.asgi:application",
        ]
        with log_path.open("wb") as log_file:
            # A session of its own, so the whole tree can be stopped by its group id.
            process = subprocess.Popen(
                command,
                cwd=config.repo,
                env=env,
                stdout=log_file,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
            sampler = TreeSampler(process.pid, limit_bytes=config.memory_cap_bytes)

            def over_cap(total: int) -> None:
                log(f"{name}: server tree at {total / GB:.1f} GB, over the cap: stopping it")
                _stop_tree(process)

            sampler.on_limit = over_cap
            try:
                url = f"http://127.0.0.1:{port}"
                _wait_until_up(url, process, log_path)
                baseline = tree_rss_bytes(process.pid)
                sampler.start()
                yield Server(url, process, sampler, data_dir, log_path, baseline)
            finally:
                sampler.stop()
                _stop_tree(process)


def _wait_until_up(url: str, process: subprocess.Popen[bytes], log_path: Path) -> None:
    deadline = time.monotonic() + SERVER_START_TIMEOUT_S
    while time.monotonic() < deadline:
        if process.poll() is not None:
            tail = log_path.read_text(errors="replace")[-3000:]
            raise RuntimeError(f"the server exited early:\n{tail}")
        if Client(url, timeout_s=5).open_page().status == 200:
            return
        time.sleep(0.3)
    raise RuntimeError(f"the server did not answer GET / within {SERVER_START_TIMEOUT_S} s")


# --------------------------------------------------------------------------- scenarios


@dataclass
class Check:
    """One line of the summary: a measured value against its target (ok None: figure only)."""

    scenario: str
    measure: str
    value: str
    target: str
    ok: bool | None


def _spread(seconds: list[float]) -> str:
    return f"{min(seconds):.1f}–{max(seconds):.1f} s" if seconds else "—"


def _seconds(answer: Answer) -> str:
    if answer.status is None:
        return f"no answer ({answer.error.split(':')[0]}) after {answer.elapsed_s:.1f} s"
    return f"{answer.status} in {answer.elapsed_s:.2f} s"


class Pinger:
    """One client (cookies kept) GETting / every PING_INTERVAL_S; records each latency."""

    def __init__(self, base_url: str) -> None:
        self.client = Client(base_url, PING_TIMEOUT_S)
        self.answers: list[Answer] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pinger", daemon=True)

    def _run(self) -> None:
        while not self._stop.is_set():
            started = time.monotonic()
            self.answers.append(self.client.open_page())
            self._stop.wait(max(0.0, PING_INTERVAL_S - (time.monotonic() - started)))

    def __enter__(self) -> Pinger:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(timeout=PING_TIMEOUT_S + 5)


def scenario_tiff(server: Server, args: argparse.Namespace) -> tuple[dict[str, Any], list[Check]]:
    data = many_page_tiff()
    with Pinger(server.url) as pinger:
        time.sleep(1.0)  # a few pings of the idle server first, for comparison
        uploader = Client(server.url)
        uploader.open_page()
        answer = uploader.upload("pages.tif", data, timeout_s=args.tiff_timeout)
        time.sleep(2.0)  # and a few after the answer: is the server still with us?
    after = Client(server.url, timeout_s=10).open_page()
    pings = pinger.answers
    latencies = [a.elapsed_s for a in pings]
    failed = [a for a in pings if a.status != 200]
    worst = max(latencies, default=0.0)
    result = {
        "file_bytes": len(data),
        "pages": TIFF_PAGES,
        "upload": answer.summary(),
        "pings": len(pings),
        "pings_failed": len(failed),
        "ping_failures": Counter(str(a.status or a.error.split(":")[0]) for a in failed),
        "ping_worst_s": round(worst, 3),
        "ping_median_s": round(statistics.median(latencies), 3) if latencies else None,
        "get_after": after.summary(),
    }
    answered = answer.status is not None and answer.elapsed_s <= TIFF_ANSWER_TARGET_S
    kept = not failed and worst <= TIFF_ANSWER_TARGET_S and after.status == 200
    checks = [
        Check(
            "tiff",
            "60,000-page TIFF upload answered",
            _seconds(answer),
            f"≤ {TIFF_ANSWER_TARGET_S:g} s",
            answered,
        ),
        Check(
            "tiff",
            "GET / every 0.2 s meanwhile: worst, failed",
            f"{worst:.2f} s, {len(failed)}/{len(pings)} failed",
            f"all 200, ≤ {TIFF_ANSWER_TARGET_S:g} s",
            kept,
        ),
    ]
    return result, checks


def scenario_bombs(server: Server, args: argparse.Namespace) -> tuple[dict[str, Any], list[Check]]:
    data = gradient_png()
    start = threading.Barrier(BOMB_CLIENTS)

    def one(index: int) -> tuple[Client, Answer]:
        client = Client(server.url, args.upload_timeout)
        client.open_page()
        start.wait(timeout=120)  # all ten bodies leave together
        return client, client.upload(f"bomb-{index}.png", data, args.upload_timeout)

    began = time.monotonic()
    with ThreadPoolExecutor(BOMB_CLIENTS) as pool:
        answers = list(pool.map(one, range(BOMB_CLIENTS)))
    uploads_s = time.monotonic() - began
    uploads_peak = server.sampler.take_window_peak()
    jobs = [job for client, answer in answers if (job := track(client, answer))]
    wait_for_jobs(jobs, time.monotonic() + args.job_timeout, interval_s=1.0)
    jobs_peak = server.sampler.take_window_peak()
    ended = [job.finished_at for job in jobs if job.finished_at is not None]
    statuses = [answer.status for _, answer in answers]
    outcomes = job_outcomes(jobs)
    result = {
        "file_bytes": len(data),
        "pixels": BOMB_SIDE * BOMB_SIDE,
        "uploads": [answer.summary() for _, answer in answers],
        "statuses": dict(Counter(str(s) for s in statuses)),
        "uploads_s": round(uploads_s, 2),
        "accepted": len(jobs),
        "jobs": outcomes,
        "all_jobs_ended_after_s": round(max(ended) - began, 1)
        if ended and len(ended) == len(jobs)
        else None,
        "memory_cap_hit": server.sampler.limit_hit,
        "peak_rss_during_uploads_bytes": uploads_peak,
        "peak_rss_during_jobs_bytes": jobs_peak,
    }
    unexpected = sorted({str(s) for s in statuses if s not in BOMB_EXPECTED})
    ended_ok = all(
        job.final is not None
        and (job.final.get("status") == "done" or bool(job.final.get("error")))
        for job in jobs
    )
    peak = server.sampler.peak_bytes
    checks = [
        Check(
            "bombs",
            "10 × 49 MP uploads: statuses",
            " ".join(f"{k}×{v}" for k, v in sorted(result["statuses"].items()))
            + f", answered in {_spread([a.elapsed_s for _, a in answers])}",
            "only 201/429/503",
            not unexpected,
        ),
        Check(
            "bombs",
            "peak RSS of the server tree",
            f"{peak / GB:.2f} GB (uploads {uploads_peak / GB:.2f}, jobs {jobs_peak / GB:.2f})"
            + (" (cap hit, killed)" if server.sampler.limit_hit else ""),
            f"< {BOMB_MEMORY_TARGET / GB:g} GB",
            peak < BOMB_MEMORY_TARGET,
        ),
        Check(
            "bombs",
            "accepted jobs ended (done, or failed with a reason)",
            f"{len(jobs)} accepted: "
            + ", ".join(f"{k} {v}" for k, v in sorted(outcomes["states"].items())),
            f"all, within {args.job_timeout:g} s",
            ended_ok,
        ),
    ]
    return result, checks


def scenario_burst(server: Server, args: argparse.Namespace) -> tuple[dict[str, Any], list[Check]]:
    data = small_jpeg(128)
    began = time.monotonic()
    with ThreadPoolExecutor(BURST_CONCURRENCY) as pool:
        answers = [
            answer
            for _, answer in pool.map(
                lambda i: stranger_upload(server.url, f"burst-{i}.jpg", data, 60),
                range(BURST_UPLOADS),
            )
        ]
    elapsed = time.monotonic() - began
    refused = [a for a in answers if a.status in (429, 503)]
    with_retry = [a for a in refused if a.retry_after_s is not None]
    first_refused = next((i for i, a in enumerate(answers) if a.status in (429, 503)), None)
    result = {
        "uploads": BURST_UPLOADS,
        "concurrency": BURST_CONCURRENCY,
        "elapsed_s": round(elapsed, 2),
        "statuses": dict(Counter(str(a.status) for a in answers)),
        "refused_with_retry_after": len(with_retry),
        "first_refused_index": first_refused,
        "retry_after_values": sorted({a.headers.get("retry-after", "") for a in with_retry}),
        "errors": dict(Counter(a.summary()["error"] for a in answers if a.status != 201)),
    }
    checks = [
        Check(
            "burst",
            "80 uploads from fresh cookie jars: statuses",
            " ".join(f"{k}×{v}" for k, v in sorted(result["statuses"].items())),
            "—",
            None,
        ),
        Check(
            "burst",
            "a 429/503 with Retry-After arrived",
            f"{len(with_retry)} of {BURST_UPLOADS}",
            "≥ 1",
            bool(with_retry),
        ),
    ]
    return result, checks


def _upload_politely(
    client: Client, name: str, data: bytes, timeout_s: float, attempts: int = 4
) -> tuple[Answer, int]:
    """Upload, honouring Retry-After on 429/503 a few times; the answer and refusal count."""
    refusals = 0
    while True:
        answer = client.upload(name, data, timeout_s)
        wait = answer.retry_after_s
        if answer.status not in (429, 503) or wait is None or refusals + 1 >= attempts:
            return answer, refusals + (answer.status in (429, 503))
        refusals += 1
        time.sleep(min(max(wait, 0.5), MAX_RETRY_WAIT_S))


def scenario_throughput(
    server: Server, args: argparse.Namespace
) -> tuple[dict[str, Any], list[Check]]:
    photos = sorted((shared_root() / "eval" / "sod" / "images").glob("*.jpg"))[:THROUGHPUT_PHOTOS]
    if len(photos) < THROUGHPUT_PHOTOS:
        raise RuntimeError(f"need {THROUGHPUT_PHOTOS} photos in {shared_root()}/eval/sod/images")
    per_client = THROUGHPUT_PHOTOS // THROUGHPUT_CLIENTS
    began = time.monotonic()

    def one(index: int) -> list[tuple[Tracked | None, Answer, int]]:
        client = Client(server.url, args.upload_timeout)
        client.open_page()
        sent = []
        for photo in photos[index * per_client : (index + 1) * per_client]:
            answer, refusals = _upload_politely(
                client, photo.name, photo.read_bytes(), args.upload_timeout
            )
            sent.append((track(client, answer), answer, refusals))
        return sent

    with ThreadPoolExecutor(THROUGHPUT_CLIENTS) as pool:
        sent = [item for batch in pool.map(one, range(THROUGHPUT_CLIENTS)) for item in batch]
    uploaded_s = time.monotonic() - began
    jobs = [job for job, _, _ in sent if job is not None]
    wait_for_jobs(jobs, time.monotonic() + args.job_timeout)
    ends = [job.finished_at for job in jobs if job.finished_at is not None]
    wall = (max(ends) - began) if ends else None
    outcomes = job_outcomes(jobs)
    done = outcomes["states"].get("done", 0)
    result = {
        "photos": [p.name for p in photos],
        "upload_statuses": dict(Counter(str(answer.status) for _, answer, _ in sent)),
        "refusals_waited_out": sum(r for _, _, r in sent),
        "uploads_s": round(uploaded_s, 2),
        "wall_s": round(wall, 2) if wall is not None else None,
        "photos_per_minute": round(done / wall * 60, 2) if wall else None,
        "jobs": outcomes,
    }
    checks = [
        Check(
            "throughput",
            "30 photos, 5 clients: wall time, photos/min",
            f"{wall:.1f} s, {result['photos_per_minute']}/min" if wall else "no job ended",
            "—",
            None,
        ),
        Check(
            "throughput",
            "peak RSS of the server tree",
            f"{server.sampler.peak_bytes / GB:.2f} GB",
            "—",
            None,
        ),
        Check(
            "throughput",
            "jobs done",
            ", ".join(f"{k} {v}" for k, v in sorted(outcomes["states"].items()))
            + f" (of {THROUGHPUT_PHOTOS} photos)",
            f"{THROUGHPUT_PHOTOS} done",
            done == THROUGHPUT_PHOTOS,
        ),
    ]
    return result, checks


def scenario_soak(server: Server, args: argparse.Namespace) -> tuple[dict[str, Any], list[Check]]:
    images = [small_jpeg(64, variant) for variant in range(4)]
    client = Client(server.url, args.upload_timeout)
    client.open_page()
    deadline = time.monotonic() + args.soak_timeout
    series: list[dict[str, Any]] = []
    states: Counter[str] = Counter()
    submitted = finished = refusals = 0
    rejected: Counter[str] = Counter()
    while finished < args.soak_jobs and time.monotonic() < deadline:
        batch: list[Tracked] = []
        wait = 0.0
        while len(batch) < SOAK_BATCH and submitted < args.soak_jobs:
            answer = client.upload(f"soak-{submitted}.jpg", images[submitted % len(images)])
            if answer.status in (429, 503):
                refusals += 1
                wait = min(answer.retry_after_s or 1.0, MAX_RETRY_WAIT_S)
                break
            submitted += 1
            job = track(client, answer)
            if job is None:  # refused for another reason: counted as a finished failure
                rejected[str(answer.status)] += 1
                finished += 1
            else:
                batch.append(job)
        if not batch and wait:
            time.sleep(wait)  # nothing of ours is running: the limit is the server's to lift
        for job in batch:
            wait_for_jobs([job], deadline, interval_s=0.2)
            if job.final is None:
                break
            states[str(job.final.get("status"))] += 1
            finished += 1
            if finished % SOAK_SAMPLE_EVERY == 0 or finished == args.soak_jobs:
                rss = tree_rss_bytes(server.process.pid)
                series.append({"jobs": finished, "rss_bytes": rss})
                log(f"soak: {finished} jobs, server tree {rss / MB:.0f} MB")
        if any(job.final is None for job in batch):
            break  # the deadline passed with a job still running
        if sum(rejected.values()) > 10:
            break  # the server refuses tiny JPEGs outright: no soak to measure
    first = next((s for s in series if s["jobs"] >= SOAK_SAMPLE_EVERY), None)
    last = series[-1] if series else None
    growth = (last["rss_bytes"] - first["rss_bytes"]) if first and last else None
    result = {
        "jobs_requested": args.soak_jobs,
        "jobs_finished": finished,
        "states": dict(states),
        "rejected_uploads": dict(rejected),
        "refusals_waited_out": refusals,
        "series": series,
        "baseline_rss_bytes": server.baseline_rss_bytes,
        "growth_bytes": growth,
        "second_half_growth_bytes": None,
    }
    ok = None
    value = "too few jobs for two samples"
    if first and last and last is not first:
        ratio = growth / first["rss_bytes"]
        ok = ratio <= SOAK_GROWTH_TARGET
        value = (
            f"{growth / MB:+.0f} MB ({ratio:+.1%}) from job {first['jobs']} "
            f"({first['rss_bytes'] / MB:.0f} MB) to job {last['jobs']}"
        )
    checks = [
        Check(
            "soak",
            f"RSS growth over {args.soak_jobs} tiny jobs",
            value,
            f"≤ {SOAK_GROWTH_TARGET:.0%}",
            ok,
        ),
    ]
    # Caches that fill once (the model, the allocator's arenas) raise the early samples; a
    # leak keeps growing in the second half too, so that figure is shown beside the target's.
    middle = next((s for s in series if s["jobs"] >= finished / 2), None)
    if middle and last and middle is not last:
        half = last["rss_bytes"] - middle["rss_bytes"]
        result["second_half_growth_bytes"] = half
        checks.append(
            Check(
                "soak",
                "RSS growth over the second half",
                f"{half / MB:+.0f} MB from job {middle['jobs']} to job {last['jobs']}",
                "—",
                None,
            )
        )
    checks += [
        Check(
            "soak",
            "jobs done",
            ", ".join(f"{k} {v}" for k, v in sorted(states.items())) or "none",
            f"{args.soak_jobs} done",
            states.get("done", 0) == args.soak_jobs,
        ),
    ]
    return result, checks


RUNNERS: dict[str, Callable[[Server, argparse.Namespace], tuple[dict[str, Any], list[Check]]]] = {
    "tiff": scenario_tiff,
    "bombs": scenario_bombs,
    "burst": scenario_burst,
    "throughput": scenario_throughput,
    "soak": scenario_soak,
}


def run_scenario(
    config: ServerConfig, name: str, args: argparse.Namespace
) -> tuple[dict[str, Any], list[Check]]:
    overrides = limits_off_env(config.repo) if name == "soak" else {}
    load_start = os.getloadavg()
    began = time.monotonic()
    record: dict[str, Any] = {"server_env_overrides": overrides}
    checks: list[Check] = []
    try:
        with running_server(config, name, overrides) as server:
            record["baseline_rss_bytes"] = server.baseline_rss_bytes
            try:
                result, checks = RUNNERS[name](server, args)
                record.update(result)
            finally:
                record["peak_rss_bytes"] = server.sampler.peak_bytes
                record["peak_processes"] = server.sampler.peak_processes
                record["rss_samples"] = server.sampler.samples
                record["memory_cap_hit"] = server.sampler.limit_hit
                record["server_alive_at_end"] = server.process.poll() is None
    except Exception as exc:  # one broken scenario must not cost the others' figures
        record["error"] = f"{type(exc).__name__}: {exc}"[:3000]
        checks.append(
            Check(name, "scenario ran", record["error"].splitlines()[0][:80], "ran", False)
        )
    record["elapsed_s"] = round(time.monotonic() - began, 1)
    record["loadavg_start"] = load_start
    record["loadavg_end"] = os.getloadavg()
    return record, checks


# --------------------------------------------------------------------------- report


def _mark(ok: bool | None) -> str:
    return "—" if ok is None else ("✔" if ok else "✘")


def render_table(checks: list[Check]) -> str:
    rows = [("scenario", "measure", "value", "target", "")]
    rows += [(c.scenario, c.measure, c.value, c.target, _mark(c.ok)) for c in checks]
    widths = [max(len(row[i]) for row in rows) for i in range(4)]
    lines = [
        "  ".join(cell.ljust(widths[i]) for i, cell in enumerate(row[:4])) + "  " + row[4]
        for row in rows
    ]
    lines.insert(1, "-" * len(lines[0]))
    return "\n".join(line.rstrip() for line in lines)


def render_report(results: dict[str, Any], checks: list[Check]) -> str:
    head = [
        f"bench.stress {results['started']}  repo {results['repo']} @ {results['commit']}",
        f"{results['cpus']} CPUs, {results['memory_total_bytes'] / GB:.1f} GB RAM, "
        f"memory cap {results['memory_cap_bytes'] / GB:.1f} GB",
        "",
    ]
    details = ["", "per scenario (RSS: sum over the Daphne process and its descendants):"]
    for name, record in results["scenarios"].items():
        peak = record.get("peak_rss_bytes", 0) / GB
        base = record.get("baseline_rss_bytes", 0) / GB
        load = "→".join(f"{record[k][0]:.2f}" for k in ("loadavg_start", "loadavg_end"))
        details.append(
            f"  {name:<10} {record['elapsed_s']:>7.1f} s  RSS idle {base:.2f} GB, peak "
            f"{peak:.2f} GB  load(1 min) {load}"
            + ("" if record.get("server_alive_at_end", True) else "  SERVER DIED")
        )
    return "\n".join(head) + render_table(checks) + "\n" + "\n".join(details) + "\n"


def git_commit(repo: Path) -> str:
    def git(*args: str) -> str:
        return subprocess.run(
            ["git", "-C", str(repo), *args], capture_output=True, text=True
        ).stdout.strip()

    commit = git("rev-parse", "--short", "HEAD") or "unknown"
    return commit + ("+dirty" if git("status", "--porcelain", "--untracked-files=no") else "")


def memory_total_bytes() -> int:
    for line in Path("/proc/meminfo").read_text().splitlines():
        if line.startswith("MemTotal:"):
            return int(line.split()[1]) * 1024
    return 8 * GB


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.stress",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--only", help=f"comma-separated scenarios (of {', '.join(SCENARIOS)})")
    parser.add_argument(
        "--out",
        type=Path,
        default=HARNESS_ROOT / "bench" / "results",
        help="where the results and server logs go (default bench/results)",
    )
    parser.add_argument(
        "--repo",
        type=Path,
        default=HARNESS_ROOT,
        help="the checkout whose server is measured (default: this one)",
    )
    parser.add_argument(
        "--python",
        default=sys.executable,
        help="the Python that runs manage.py and Daphne (default: this one)",
    )
    parser.add_argument("--soak-jobs", type=int, default=300)
    parser.add_argument(
        "--soak-timeout", type=float, default=1800, help="seconds the soak may take in all"
    )
    parser.add_argument(
        "--tiff-timeout",
        type=float,
        default=120,
        help="seconds to wait for the answer to the TIFF upload",
    )
    parser.add_argument(
        "--upload-timeout",
        type=float,
        default=300,
        help="seconds to wait for any other upload's answer",
    )
    parser.add_argument(
        "--job-timeout",
        type=float,
        default=600,
        help="seconds to wait for a scenario's accepted jobs to finish",
    )
    parser.add_argument(
        "--memory-cap-gb",
        type=float,
        help="stop a server whose tree passes this RSS, to protect the machine "
        "(default: 60%% of RAM, at most 16)",
    )
    parser.add_argument(
        "--server-env",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="extra environment for every server (repeatable)",
    )
    args = parser.parse_args(argv)
    chosen = [s.strip() for s in (args.only or ",".join(SCENARIOS)).split(",") if s.strip()]
    unknown = [s for s in chosen if s not in SCENARIOS]
    if unknown or not chosen:
        parser.error(f"--only takes names from {', '.join(SCENARIOS)}; got {args.only!r}")
    args.only = [s for s in SCENARIOS if s in chosen]
    if args.soak_jobs < 1:
        parser.error("--soak-jobs must be at least 1")
    try:
        args.server_env = dict(item.split("=", 1) for item in args.server_env)
    except ValueError:
        parser.error("--server-env takes NAME=VALUE")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    repo = args.repo.resolve()
    if not (repo / "manage.py").is_file():
        raise SystemExit(f"--repo {repo}: no manage.py there")
    model_dir = Path(os.getenv("BGREMOVER_MODEL_DIR") or shared_root() / "models")
    if not any(model_dir.glob("*.pth")):
        raise SystemExit(f"no weights (*.pth) in {model_dir}: set BGREMOVER_SHARED")
    total = memory_total_bytes()
    cap = int(args.memory_cap_gb * GB) if args.memory_cap_gb else min(16 * GB, int(total * 0.6))
    stamp, log_dir = open_run(args.out, "stress")
    with tempfile.TemporaryDirectory(prefix="stress-static-") as static:
        config = ServerConfig(
            repo, args.python, model_dir, Path(static), log_dir, cap, args.server_env
        )
        results: dict[str, Any] = {
            "started": datetime.datetime.now().isoformat(timespec="seconds"),
            "repo": str(repo),
            "commit": git_commit(repo),
            "python": args.python,
            "cpus": os.cpu_count(),
            "memory_total_bytes": total,
            "memory_cap_bytes": cap,
            "model_dir": str(model_dir),
            "settings_env_names": settings_names(repo),
            "server_env": args.server_env,
            "options": {k: v for k, v in vars(args).items() if k not in ("out", "repo")},
            "scenarios": {},
        }
        log(f"preparing {repo} ({results['commit']}): collectstatic")
        results.update(prepare(config))
        checks: list[Check] = []
        for name in args.only:
            log(f"{name}: starting a fresh server")
            record, scenario_checks = run_scenario(config, name, args)
            results["scenarios"][name] = record
            checks += scenario_checks
            for check in scenario_checks:
                log(f"{name}: {check.measure}: {check.value} [{_mark(check.ok)}]")
    results["checks"] = [asdict(check) for check in checks]
    write_results(args.out / f"stress-{stamp}", results, render_report(results, checks), log_dir)
    return 0


def open_run(out: Path, prefix: str) -> tuple[str, Path]:
    """A run's timestamp and its server-log folder under ``out``. From here on a SIGTERM (make
    interrupted, a CI timeout) still runs the finally blocks that stop the servers."""
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    out.mkdir(parents=True, exist_ok=True)
    log_dir = out / f"{prefix}-{stamp}-logs"
    log_dir.mkdir()
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))
    return stamp, log_dir


def write_results(base: Path, results: dict[str, Any], text: str, log_dir: Path) -> None:
    """``base``.json and ``base``.txt, and the table on standard output."""
    Path(f"{base}.json").write_text(json.dumps(results, indent=2, default=str) + "\n")
    Path(f"{base}.txt").write_text(text)
    print(text)
    print(f"results: {base}.json, {base}.txt; server logs: {log_dir}")


if __name__ == "__main__":
    sys.exit(main())
