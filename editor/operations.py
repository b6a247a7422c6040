"""Operating the service: liveness and readiness probes, Prometheus metrics.

``/healthz``  the process answers: 200 ``{"status": "ok"}``, touching nothing else (no
              database), for a liveness probe that restarts a hung process.
``/readyz``   this instance can do its work: 200 when every check passes, else 503, with
              ``{"status": "ok" | "failing", "checks": {name: {"ok": bool, "detail": str}}}``
              for the checks database, channel_layer, weights, queue and disk (CHECKS).
``/metrics``  Prometheus text format, only with settings.METRICS_TOKEN set (404 otherwise) and
              then only for ``Authorization: Bearer <token>`` (401 otherwise).

All three answer GET and HEAD only (so CSRF never applies: no view here is csrf_exempt),
are outside the rate limits, create no session, and carry ``Cache-Control: no-store``
(editor.security). Keep /readyz off the public side of the proxy if its details (queue
depth, disk use, error texts) should stay private.

The metrics live in a registry of their own (REGISTRY, not prometheus_client's global one).
Counts kept in the database (jobs by state, the queue, stage durations, failures by reason,
disk use) are read at scrape time by DatabaseCollector, so every web process reports the
same numbers; refusals (editor.refusals.count_refusal, called where a request is turned
away) are counted per process since it started, like any Prometheus counter.

Nothing here imports PyTorch: the weights check uses engine.weights_catalogue's lookups,
which are torch-free, and checks the file's bytes (size, published md5, or the CRCs of a
PyTorch archive) without loading it.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import shutil
import threading
import time
import uuid
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass
from http import HTTPStatus
from pathlib import Path

from asgiref.sync import async_to_sync
from channels.layers import get_channel_layer
from django.conf import settings
from django.db import connection
from django.db.models import Count, Min
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from django.views.decorators.http import require_safe
from prometheus_client import CollectorRegistry
from prometheus_client.core import GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.exposition import choose_encoder
from prometheus_client.utils import floatToGoString

from bgremover.engine import weights_catalogue
from bgremover.engine.errors import WeightsError
from editor.models import Job
from editor.weights_advice import explained

# The metrics' registry (refusal counts: editor.refusals).
REGISTRY = CollectorRegistry()


# ---- Readiness checks


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


def _megabytes(size: int) -> str:
    return f"{size / 1e6:.1f} MB"


def check_database() -> Check:
    started = time.monotonic()
    with connection.cursor() as cursor:
        cursor.execute("SELECT 1")
        row = cursor.fetchone()
    if row is None or row[0] != 1:
        return Check(False, f"SELECT 1 answered {row!r}")
    elapsed_ms = (time.monotonic() - started) * 1000
    return Check(True, f"{connection.vendor}: SELECT 1 in {elapsed_ms:.0f} ms")


# Seconds the channel layer's round trip may take (a Redis that does not answer).
CHANNEL_TIMEOUT_S = 2.0


async def _round_trip(layer: object) -> None:
    channel = await layer.new_channel()  # type: ignore[attr-defined]
    token = uuid.uuid4().hex
    await layer.send(channel, {"type": "readyz.ping", "token": token})  # type: ignore[attr-defined]
    message = await layer.receive(channel)  # type: ignore[attr-defined]
    if message.get("token") != token:
        raise RuntimeError("the message received is not the one sent")


async def _timed_round_trip(layer: object) -> None:
    await asyncio.wait_for(_round_trip(layer), CHANNEL_TIMEOUT_S)


def check_channel_layer() -> Check:
    """A message sent to a fresh channel comes back: the layer the workers publish progress
    through (Redis when REDIS_URL is set) is reachable from here."""
    layer = get_channel_layer()
    if layer is None:
        return Check(False, "no channel layer is configured (CHANNEL_LAYERS)")
    started = time.monotonic()
    try:
        async_to_sync(_timed_round_trip)(layer)
    except TimeoutError:
        return Check(False, f"{type(layer).__name__}: no answer within {CHANNEL_TIMEOUT_S:g} s")
    elapsed_ms = (time.monotonic() - started) * 1000
    return Check(True, f"{type(layer).__name__}: round trip in {elapsed_ms:.0f} ms")


# torch.save's legacy (pre-zip) format opens with the pickled magic number 0x1950a86a20f9469cfc6c.
_LEGACY_TORCH_MAGIC = b"\x80\x02\x8a\x0al\xfc\x9cF\xf9 j\xa8P\x19"
# (path, size, mtime, model) → the verdict: each file is read in full once, not every probe.
_verified: dict[tuple[str, int, int, str], Check] = {}
_verified_lock = threading.Lock()


def _md5(path: Path) -> str:
    digest = hashlib.md5(usedforsecurity=False)
    with path.open("rb") as file:
        while block := file.read(1 << 20):
            digest.update(block)
    return digest.hexdigest()


def verify_weights_file(path: Path, spec: weights_catalogue.ModelSpec) -> Check:
    """What can be told of a weights file without loading it: its size against the published
    one, its md5 against the published one, else (converted checkpoints, such as the shared
    u2netp.pth, are good weights with other bytes) that it is a PyTorch archive whose every
    member passes its CRC check. A file that is all there but holds the wrong tensors only
    shows when a worker loads it (the job then fails with the reason)."""
    size = path.stat().st_size
    where = f"{spec.name}: {path} ({_megabytes(size)})"
    if size == 0:
        return Check(False, f"{where} is empty")
    if spec.size is not None and size != spec.size:
        return Check(False, f"{where} should be {spec.size} bytes")
    if spec.md5 is not None and _md5(path) == spec.md5:
        return Check(True, f"{where}, md5 as published")
    if zipfile.is_zipfile(path):
        try:
            with zipfile.ZipFile(path) as archive:
                names = archive.namelist()
                if not any(name.endswith("/data.pkl") for name in names):
                    return Check(False, f"{where} is a zip archive but not a PyTorch file")
                broken = archive.testzip()
        except (zipfile.BadZipFile, OSError, EOFError) as exc:
            return Check(False, f"{where} is a damaged archive ({exc})")
        if broken is not None:
            return Check(False, f"{where} is damaged: {broken} fails its CRC check")
        return Check(True, f"{where}, PyTorch archive, {len(names)} members pass their CRC check")
    with path.open("rb") as file:
        head = file.read(len(_LEGACY_TORCH_MAGIC))
    if head == _LEGACY_TORCH_MAGIC:
        return Check(True, f"{where}, legacy PyTorch format (no checksum to verify)")
    return Check(False, f"{where} is not a PyTorch weights file")


def check_weights() -> Check:
    """The configured model (BGREMOVER_MODEL, else the best present) has its weights file
    where the workers look (BGREMOVER_MODEL_DIR, then models/), and the file is intact."""
    model_dir = settings.MODEL_DIR
    try:
        name = settings.DEFAULT_MODEL or weights_catalogue.default_model_name(model_dir)
        spec = weights_catalogue.get_spec(name)
    except WeightsError as exc:
        return Check(False, explained(exc))
    path = weights_catalogue.find_weights(name, model_dir)
    if path is None:
        return Check(False, explained(weights_catalogue.not_found(spec, model_dir)))
    stat = path.stat()
    key = (str(path.resolve()), stat.st_size, stat.st_mtime_ns, spec.name)
    with _verified_lock:
        known = _verified.get(key)
    if known is None:
        known = verify_weights_file(path, spec)
        with _verified_lock:
            _verified[key] = known
    return known


def check_queue() -> Check:
    """Room for more jobs: queued and running jobs below JOB_QUEUE_LIMIT (past it, every
    upload is refused with 503)."""
    from editor.quotas import active_jobs  # (editor.quotas counts its refusals through here)

    active, limit = active_jobs(), settings.JOB_QUEUE_LIMIT
    if limit <= 0:
        return Check(True, f"{active} queued or running (no JOB_QUEUE_LIMIT)")
    return Check(active < limit, f"{active} queued or running, JOB_QUEUE_LIMIT {limit}")


def _existing(path: Path) -> Path:
    """``path``, or its nearest folder that exists (MEDIA_ROOT before the first upload)."""
    for candidate in (path, *path.parents):
        if candidate.exists():
            return candidate
    return path


def room_needed_bytes() -> int:
    """Free space an upload may need on MEDIA_ROOT: the largest upload and its result."""
    from editor.quotas import RESERVED_BYTES_PER_PIXEL

    return settings.MAX_UPLOAD_BYTES + settings.MAX_UPLOAD_PIXELS * RESERVED_BYTES_PER_PIXEL


def check_disk() -> Check:
    """Stored bytes below DISK_BUDGET_BYTES (past it, every upload is refused with 507), and
    room on MEDIA_ROOT's file system for the largest upload and its result."""
    from editor.quotas import disk_usage

    used, budget = disk_usage(), settings.DISK_BUDGET_BYTES
    free = shutil.disk_usage(_existing(Path(settings.MEDIA_ROOT))).free
    needed = room_needed_bytes()
    within = budget <= 0 or used < budget
    of_budget = f"of DISK_BUDGET_BYTES {_megabytes(budget)}" if budget > 0 else "(no budget)"
    detail = (
        f"{_megabytes(used)} used {of_budget}; {_megabytes(free)} free on MEDIA_ROOT's file "
        f"system, {_megabytes(needed)} needed for the largest upload"
    )
    return Check(within and free >= needed, detail)


CHECKS: dict[str, Callable[[], Check]] = {
    "database": check_database,
    "channel_layer": check_channel_layer,
    "weights": check_weights,
    "queue": check_queue,
    "disk": check_disk,
}


def run_check(check: Callable[[], Check]) -> Check:
    """The check's verdict; one that raises fails with the error's first line."""
    try:
        return check()
    except Exception as exc:  # the failure is the answer: unreachable, misconfigured, …
        first_line = (str(exc).strip().splitlines() or [""])[0][:300]
        return Check(False, f"{type(exc).__name__}: {first_line}".rstrip(": "))


# ---- Views


@require_safe
def healthz(request: HttpRequest) -> JsonResponse:
    return JsonResponse({"status": "ok"})


@require_safe
def readyz(request: HttpRequest) -> JsonResponse:
    results = {name: run_check(check) for name, check in CHECKS.items()}
    ready = all(result.ok for result in results.values())
    return JsonResponse(
        {
            "status": "ok" if ready else "failing",
            "checks": {name: asdict(result) for name, result in results.items()},
        },
        status=HTTPStatus.OK if ready else HTTPStatus.SERVICE_UNAVAILABLE,
    )


def authorized(request: HttpRequest, token: str) -> bool:
    """The request carries ``Authorization: Bearer <token>`` (compared in constant time)."""
    supplied = request.headers.get("Authorization", "")
    return hmac.compare_digest(supplied.encode(), f"Bearer {token}".encode())


@require_safe
def metrics(request: HttpRequest) -> HttpResponse:
    token = settings.METRICS_TOKEN
    if not token:
        raise Http404("Metrics are off (METRICS_TOKEN is not set)")
    if not authorized(request, token):
        response = HttpResponse(
            "Send Authorization: Bearer <METRICS_TOKEN>.\n",
            status=HTTPStatus.UNAUTHORIZED,
            content_type="text/plain; charset=utf-8",
        )
        response["WWW-Authenticate"] = 'Bearer realm="metrics"'
        return response
    # The text format, or OpenMetrics for a scraper that asks for it (Prometheus does).
    encode, content_type = choose_encoder(request.headers.get("Accept", ""))
    return HttpResponse(encode(REGISTRY), content_type=content_type)


# ---- Metrics read from the database at scrape time

# Upper bounds (seconds) of the stage-duration histogram's buckets.
STAGE_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0)

FAILURE_REASONS = (
    "time_limit",
    "memory_limit",
    "worker_lost",
    "result_lost",
    "operator",
    "unexpected",
    "weights",
    "engine_error",
)


def failure_reason(error: str) -> str:
    """A failed job's reason, from its message (written by editor.tasks, progress, retention,
    recovery, storage_check and the admin's fail action): one of FAILURE_REASONS. What none
    of those wrote is the engine's own message about the image (an EngineError)."""
    text = error.lower()
    if "more memory than" in text:
        return "memory_limit"
    if "limit" in text and ("longer than" in text or "ran past" in text):
        return "time_limit"
    if "engine process ended" in text or "the worker running it stopped each time" in text:
        return "worker_lost"
    if "files were lost" in text:
        return "result_lost"
    if "server's operator" in text:
        return "operator"
    if "went wrong on our side" in text:
        return "unexpected"
    if "its model weights are" in text:
        return "weights"
    return "engine_error"


def _has_field(model: type, name: str) -> bool:
    return any(field.name == name for field in model._meta.get_fields())  # type: ignore[attr-defined]


def stage_histograms(rows: Iterable[object]) -> dict[str, tuple[list[int], float]]:
    """stage → (count per STAGE_BUCKETS bound, plus +Inf; sum of seconds) over the
    ``{stage: seconds}`` mappings in ``rows`` (anything else is skipped)."""
    histograms: dict[str, tuple[list[int], float]] = {}
    for row in rows:
        if not isinstance(row, dict):
            continue
        for stage, seconds in row.items():
            if not isinstance(seconds, int | float) or seconds < 0:
                continue
            counts, total = histograms.get(stage, ([0] * (len(STAGE_BUCKETS) + 1), 0.0))
            for index, bound in enumerate(STAGE_BUCKETS):
                if seconds <= bound:
                    counts[index] += 1
            counts[-1] += 1
            histograms[stage] = (counts, total + seconds)
    return histograms


class DatabaseCollector:
    """Metrics computed from the database rows on each scrape."""

    def describe(self) -> Iterator[Metric]:
        yield GaugeMetricFamily("bgremover_jobs", "")
        yield GaugeMetricFamily("bgremover_queue_depth", "")
        yield GaugeMetricFamily("bgremover_queue_limit", "")
        yield GaugeMetricFamily("bgremover_queue_oldest_age_seconds", "")
        yield HistogramMetricFamily("bgremover_stage_duration_seconds", "")
        yield GaugeMetricFamily("bgremover_failed_jobs", "")
        yield GaugeMetricFamily("bgremover_disk_usage_bytes", "")
        yield GaugeMetricFamily("bgremover_disk_budget_bytes", "")
        yield GaugeMetricFamily("bgremover_media_free_bytes", "")

    def collect(self) -> Iterator[Metric]:
        from editor.quotas import disk_usage

        by_state = dict(
            Job.objects.order_by().values_list("status").annotate(count=Count("pk"))  # type: ignore[arg-type]
        )
        jobs = GaugeMetricFamily(
            "bgremover_jobs", "Jobs kept in the database, by state.", labels=["state"]
        )
        for state in Job.Status.values:
            jobs.add_metric([state], by_state.get(state, 0))
        yield jobs

        active = by_state.get(Job.Status.QUEUED, 0) + by_state.get(Job.Status.RUNNING, 0)
        yield GaugeMetricFamily(
            "bgremover_queue_depth",
            "Jobs queued or running (uploads past JOB_QUEUE_LIMIT are refused).",
            value=active,
        )
        yield GaugeMetricFamily(
            "bgremover_queue_limit", "JOB_QUEUE_LIMIT (0: no cap).", value=settings.JOB_QUEUE_LIMIT
        )
        oldest = Job.objects.filter(status=Job.Status.QUEUED).aggregate(oldest=Min("created_at"))
        age = (timezone.now() - oldest["oldest"]).total_seconds() if oldest["oldest"] else 0.0
        yield GaugeMetricFamily(
            "bgremover_queue_oldest_age_seconds",
            "Age of the oldest queued job (since it was created; 0 when none waits).",
            value=max(0.0, age),
        )

        durations = HistogramMetricFamily(
            "bgremover_stage_duration_seconds",
            "Seconds each stage took, over the finished jobs kept in the database "
            "(Job.stage_seconds of done jobs; it drops as jobs expire).",
            labels=["stage"],
        )
        if _has_field(Job, "stage_seconds"):
            rows = (
                Job.objects.filter(status=Job.Status.DONE)
                .order_by()
                .values_list("stage_seconds", flat=True)
                .iterator()
            )
            for stage, (counts, total) in sorted(stage_histograms(rows).items()):
                bounds = [floatToGoString(bound) for bound in STAGE_BUCKETS] + ["+Inf"]
                durations.add_metric([stage], list(zip(bounds, counts, strict=True)), total)
        yield durations

        failures = dict.fromkeys(FAILURE_REASONS, 0)
        errors = (
            Job.objects.filter(status=Job.Status.FAILED)
            .order_by()
            .values_list("error", flat=True)
            .iterator()
        )
        for error in errors:
            failures[failure_reason(error)] += 1
        failed = GaugeMetricFamily(
            "bgremover_failed_jobs",
            "Failed jobs kept in the database, by reason.",
            labels=["reason"],
        )
        for reason, count in failures.items():
            failed.add_metric([reason], count)
        yield failed

        yield GaugeMetricFamily(
            "bgremover_disk_usage_bytes",
            "Bytes counted against DISK_BUDGET_BYTES: stored files and the room held for "
            "unfinished jobs' results.",
            value=disk_usage(),
        )
        yield GaugeMetricFamily(
            "bgremover_disk_budget_bytes",
            "DISK_BUDGET_BYTES (0: no budget).",
            value=settings.DISK_BUDGET_BYTES,
        )
        yield GaugeMetricFamily(
            "bgremover_media_free_bytes",
            "Free bytes on MEDIA_ROOT's file system.",
            value=shutil.disk_usage(_existing(Path(settings.MEDIA_ROOT))).free,
        )


REGISTRY.register(DatabaseCollector())
