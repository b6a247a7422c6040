"""The client side of one topology's run: the users and their uploads, a websocket per job
(the status URL polled when it closes early), the downloads, and the worker killer."""

from __future__ import annotations

import argparse
import asyncio
import functools
import os
import signal
import time
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from bench.loadtest import log
from bench.loadtest.records import (
    JobRecord,
    Message,
    classify,
    parse_state_frame,
    rounded,
    sent_timestamp,
    state_key,
)
from bench.loadtest.topologies import Topology, running_task
from bench.loopback.client import Answer, Client
from bench.loopback.memory import process_label, process_tree
from bench.loopback.runs import shared_root, sod_photos

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# The browser polls the status URL this often when its socket is gone (static/js/jobs.js).
FALLBACK_POLL_S = 1.0
# Without a timestamp in the state messages, running jobs are polled this often to see when
# each state reached the database: the socket's delay is measured against that.
LATENCY_POLL_S = 0.2
UPLOAD_TIMEOUT_S = 120.0
REQUEST_TIMEOUT_S = 60.0
SOCKET_OPEN_TIMEOUT_S = 30.0
MAX_UPLOAD_ATTEMPTS = 30
MAX_DOWNLOAD_ATTEMPTS = 20
# A finished job's result that answers 404 is asked for again for this long before it counts
# as missing (and the job as lost).
LATE_RESULT_WAIT_S = 3.0
# The worker to kill must be running a job; it is looked for this long after the trigger.
KILL_SEARCH_S = 60.0

T = TypeVar("T")


def load_photos(count: int) -> list[tuple[str, bytes]]:
    """``count`` uploads of the SOD photos, cycled, each file read once: (name, bytes)."""
    files = sod_photos()
    if not files:
        raise RuntimeError(f"no photos in {shared_root()}/eval/sod/images: set BGREMOVER_SHARED")
    unique = {f: f.read_bytes() for f in files[: min(count, len(files))]}
    chosen = [files[i % len(files)] for i in range(count)]
    return [(f"{i:03d}-{f.name}", unique[f]) for i, f in enumerate(chosen)]


def shares(items: Sequence[T], users: int) -> list[list[T]]:
    """Item i goes to user i mod users, in order."""
    return [list(items[u::users]) for u in range(users)]


class LoadRun:
    """The client side of one topology's run: users, sockets, polls and downloads."""

    def __init__(self, topology: Topology, args: argparse.Namespace, deadline: float) -> None:
        self.topology = topology
        self.args = args
        self.deadline = deadline
        self.records: list[JobRecord] = []
        self.tasks: set[asyncio.Task[None]] = set()
        self.latency_polling = True
        self.latency_slots = max(0, args.latency_polls)
        self.finished = 0
        self.t0 = time.monotonic()
        self.kill: dict[str, Any] = {}
        self.executor = ThreadPoolExecutor(max_workers=args.users + 24)

    def left(self) -> float:
        return self.deadline - time.monotonic()

    async def call(self, fn: Callable[..., T], *args: Any) -> T:
        """A blocking call (bench.loopback's client) in a thread."""
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.executor, functools.partial(fn, *args))

    def spawn(self, coroutine: Any) -> None:
        task = asyncio.create_task(coroutine)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)

    def endpoints(self, user: int) -> tuple[str, str]:
        """(HTTP server, websocket server) of a user: with two web processes, never the same."""
        webs = self.topology.webs
        return webs[user % len(webs)].url, webs[(user + 1) % len(webs)].url

    # ---- one user

    async def user(self, index: int, photos: list[tuple[str, bytes]]) -> None:
        web, socket_server = self.endpoints(index)
        client = Client(web, timeout_s=REQUEST_TIMEOUT_S)
        await self.call(client.open_page)
        for name, data in photos:
            record = JobRecord(index, name, web, socket_server)
            self.records.append(record)
            record.upload_started = time.monotonic()
            answer = await self.upload(client, record, name, data)
            record.upload_answered = time.monotonic()
            record.upload_status = answer.status
            state = answer.json() or {}
            if answer.status != 201 or not state.get("job"):
                record.upload_error = answer.summary()["error"][:200]
                continue
            record.job_id, record.image_id = str(state["job"]), str(state.get("image"))
            record.initial = state
            self.spawn(self.follow(record, dict(client.cookies), state))

    async def upload(self, client: Client, record: JobRecord, name: str, data: bytes) -> Answer:
        """Upload, waiting out 429/503 as Retry-After says (until the deadline)."""
        while True:
            answer = await self.call(client.upload, name, data, UPLOAD_TIMEOUT_S)
            if answer.status not in (429, 503):
                return answer
            record.refusals.append(answer.status)
            wait = answer.retry_wait_s(0.2)
            if len(record.refusals) >= MAX_UPLOAD_ATTEMPTS or wait >= self.left():
                return answer
            record.retries += 1
            await asyncio.sleep(wait)

    # ---- one job

    async def follow(self, record: JobRecord, cookies: dict[str, str], state: dict) -> None:
        if state.get("finished"):
            self.finish(record, state, "upload")
        else:
            await self.watch_socket(record, cookies, state)
            if record.final is None:
                await self.poll_until_finished(record, cookies, state)
        if record.final is not None and record.final.get("status") == "done":
            await self.download(record, cookies)

    def finish(self, record: JobRecord, state: dict[str, Any], via: str) -> None:
        if record.final is None:
            record.final, record.finished_at, record.final_via = state, time.monotonic(), via
            self.finished += 1

    async def watch_socket(self, record: JobRecord, cookies: dict[str, str], state: dict) -> None:
        from websockets.asyncio.client import connect
        from websockets.exceptions import InvalidStatus, WebSocketException

        server = record.socket_server
        uri = "ws" + server.removeprefix("http") + state["urls"]["socket"]
        headers = {"Cookie": "; ".join(f"{k}={v}" for k, v in cookies.items())}
        poller: asyncio.Task[None] | None = None
        try:
            async with connect(
                uri,
                origin=server,  # type: ignore[arg-type]  (the server's own origin)
                additional_headers=headers,
                proxy=None,
                open_timeout=SOCKET_OPEN_TIMEOUT_S,
                max_size=1 << 20,
            ) as socket:
                async for frame in socket:
                    message = Message(time.monotonic(), time.time(), parse_state_frame(frame) or {})
                    if not message.state:
                        record.socket_error = "unreadable frame"
                        continue
                    record.messages.append(message)
                    if message.state.get("finished"):
                        self.finish(record, message.state, "socket")
                        break
                    if poller is None and self.wants_latency_poll(record, message):
                        poller = asyncio.create_task(self.poll_for_latency(record, cookies))
                record.socket_close_code = socket.close_code
        except InvalidStatus as exc:
            record.socket_error = f"handshake refused ({exc.response.status_code})"
        except (OSError, TimeoutError, WebSocketException) as exc:
            record.socket_error = f"{type(exc).__name__}: {exc}"[:200]
        finally:
            if poller is not None:
                poller.cancel()
                await asyncio.gather(poller, return_exceptions=True)
                self.latency_slots += 1

    def wants_latency_poll(self, record: JobRecord, message: Message) -> bool:
        """Poll a running job beside its socket when the messages carry no timestamp, for at
        most --latency-polls jobs at once."""
        if not self.latency_polling or message.state.get("status") != "running":
            return False
        if sent_timestamp(message.state) is not None:
            self.latency_polling = False  # the server stamps its messages: no need
            return False
        if self.latency_slots <= 0:
            return False
        self.latency_slots -= 1
        return True

    async def poll_for_latency(self, record: JobRecord, cookies: dict[str, str]) -> None:
        client = self.client_for(record.web, cookies)
        record.polled_from = time.monotonic()
        while record.final is None:
            state = await self.call(client.job_state, self.status_url(record), REQUEST_TIMEOUT_S)
            if state is not None:
                record.polls.append(Message(time.monotonic(), time.time(), state))
                if state.get("finished"):
                    return
            await asyncio.sleep(LATENCY_POLL_S)

    async def poll_until_finished(
        self, record: JobRecord, cookies: dict[str, str], state: dict
    ) -> None:
        """The browser's fallback: the status URL once a second until the job is finished."""
        client = self.client_for(record.web, cookies)
        while record.final is None:
            answer = await self.call(client.request, "GET", self.status_url(record))
            record.fallback_polls += 1
            polled = answer.json() if answer.status == 200 else None
            if polled and (
                not record.polled_states
                or state_key(polled) != state_key(record.polled_states[-1].state)
            ):
                record.polled_states.append(Message(time.monotonic(), time.time(), polled))
            if answer.status == 404:
                self.finish(record, {**state, "status": "failed", "error": "gone (404)"}, "poll")
            elif polled and polled.get("finished"):
                self.finish(record, polled, "poll")
            else:
                await asyncio.sleep(FALLBACK_POLL_S)

    async def download(self, record: JobRecord, cookies: dict[str, str]) -> None:
        assert record.final is not None
        client = self.client_for(record.web, cookies)
        url = (record.final.get("urls") or {}).get("cutout")
        url = url or f"/images/{record.image_id}/download/?format=png"
        first_404: float | None = None
        for _ in range(MAX_DOWNLOAD_ATTEMPTS):
            answer = await self.call(client.request, "GET", url)
            record.download_status = answer.status
            if answer.status == 404 and first_404 is None:
                # Done, yet no file: was "done" sent before its result was committed? Asked
                # again shortly, to tell a late result (reported) from a missing one (lost).
                first_404 = time.monotonic()
            if answer.status == 404 and time.monotonic() - first_404 < LATE_RESULT_WAIT_S:
                await asyncio.sleep(0.25)
                continue
            if answer.status not in (429, 503):
                break
            record.download_retries += 1
            await asyncio.sleep(answer.retry_wait_s(0.2))
        if first_404 is not None and answer.status == 200:
            record.result_late_s = time.monotonic() - first_404
        record.download_bytes = len(answer.body)
        record.png = answer.status == 200 and answer.body.startswith(PNG_MAGIC)

    def client_for(self, url: str, cookies: dict[str, str]) -> Client:
        client = Client(url, timeout_s=REQUEST_TIMEOUT_S)
        client.cookies = dict(cookies)
        return client

    @staticmethod
    def status_url(record: JobRecord) -> str:
        assert record.initial is not None
        return str(record.initial["urls"]["status"])

    # ---- the killer

    async def kill_worker(self, at_fraction: float) -> None:
        """SIGKILL one db_worker and its engine child once ``at_fraction`` of the photos are
        finished, choosing one that is running a job (its log's last task line says so)."""
        workers = self.topology.workers
        while self.finished < at_fraction * self.args.photos:
            await asyncio.sleep(0.2)
        search_until = time.monotonic() + KILL_SEARCH_S
        victim, task = None, None
        while victim is None and time.monotonic() < search_until:
            for proc in workers:
                task = running_task(proc.log_path)
                if task is not None and proc.process.poll() is None:
                    victim = proc
                    break
            else:
                await asyncio.sleep(0.2)
        if victim is None:
            self.kill = {"error": f"no worker was running a job for {KILL_SEARCH_S:g} s"}
            return
        tree = process_tree(victim.process.pid)
        labels = {pid: process_label(pid) for pid in tree}
        killed_at = time.monotonic()
        for pid in tree:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        running = [
            r.job_id
            for r in self.records
            if r.final is None
            and r.timeline()
            and r.timeline()[-1].state.get("status") == "running"
        ]
        self.kill = {
            "worker": victim.role,
            "pids": {str(pid): label for pid, label in labels.items()},
            "task": task,
            "at_s": round(killed_at - self.t0, 2),
            "finished_before": self.finished,
            "running_jobs_then": running,
        }
        log(f"killed {victim.role} ({', '.join(labels.values())}) in task {task}")

    def kill_outcome(self) -> dict[str, Any]:
        """Which job the killed worker held: of the jobs running at the kill, the one whose
        socket then stayed silent longest; how it ended."""
        if "at_s" not in self.kill:
            return self.kill
        killed_at = self.t0 + self.kill["at_s"]
        candidates = []
        for record in self.records:
            if record.job_id not in self.kill["running_jobs_then"]:
                continue
            after = [m.at for m in record.timeline() if m.at > killed_at]
            silence = (after[0] if after else time.monotonic()) - killed_at
            candidates.append((silence, record))
        if not candidates:
            return self.kill
        silence, record = max(candidates, key=lambda item: item[0])
        outcome, reason = classify(record)
        seen = record.timeline()
        restarted = any(
            b.state.get("percent", 0) < a.state.get("percent", 0)
            or (a.state.get("status") == "running" and b.state.get("status") == "queued")
            for a, b in zip(seen, seen[1:], strict=False)
        )
        return {
            **self.kill,
            "job": record.job_id,
            "silent_after_kill_s": round(silence, 1),
            "outcome": outcome,
            "reason": reason,
            "time_to_result_s": rounded(record.time_to_result),
            "restart_seen": restarted,
        }

    # ---- the whole run

    async def run(self, photos: list[tuple[str, bytes]]) -> bool:
        """True when everything finished before the deadline."""
        loop = asyncio.get_running_loop()
        loop.set_default_executor(self.executor)
        self.t0 = time.monotonic()
        users = [
            asyncio.create_task(self.user(i, share))
            for i, share in enumerate(shares(photos, self.args.users))
        ]
        killer = None
        if self.args.kill_worker and self.topology.workers:
            killer = asyncio.create_task(self.kill_worker(self.args.kill_at))
        in_time = True
        try:
            async with asyncio.timeout(max(0.0, self.left())):
                await asyncio.gather(*users)
                while self.tasks:
                    await asyncio.gather(*list(self.tasks))
        except TimeoutError:
            in_time = False
            log("deadline reached: stopping the clients")
        finally:
            pending = [t for t in [*users, *self.tasks, killer] if t is not None and not t.done()]
            for task in pending:
                task.cancel()
            await asyncio.gather(*pending, return_exceptions=True)
            if killer is not None and killer.done() and not killer.cancelled():
                if killer.exception() is not None:
                    self.kill = {"error": f"the killer failed: {killer.exception()!r}"}
            self.executor.shutdown(wait=False, cancel_futures=True)
        return in_time
