"""Caps on queued work and stored bytes, per owner and for the whole server.

**Queue.** Jobs waiting or running at once: at most settings.JOB_QUEUE_LIMIT_PER_OWNER for one
owner (past it an upload or re-run answers 429) and settings.JOB_QUEUE_LIMIT for everyone
together (503); both with Retry-After. 0 turns a cap off.

**Disk.** Bytes stored: at most settings.DISK_BUDGET_BYTES in all and
settings.DISK_BUDGET_PER_OWNER_BYTES per owner; an upload, re-run or background upload that
would pass either answers 507 Insufficient Storage, and nothing already stored is touched.
0 turns a budget off. What counts: every original (``Image.size_bytes``), every custom
background (``Image.background_bytes``), every result's files (``Result.size_bytes``), and for
each job not finished yet a reservation of RESERVED_BYTES_PER_PIXEL bytes per pixel of its
image, since its result is not written yet. Usage is summed from those rows each time (no
counter that could drift from what is stored); files outside them (e.g. a temporary upload
still being received) are not counted.

**Races.** The views call ``admit_*`` inside the transaction that creates the job (or the
image), before writing any file. On SQLite every transaction starts IMMEDIATE (settings
DATABASES), so the count and the insert of concurrent requests are serialised and the caps
are exact. On PostgreSQL (READ COMMITTED) concurrent requests may all count before any of them
inserts, so each cap can be passed by up to the number of requests arriving at once: a rough
cap, which is enough against a flood (the rate limits bound how many arrive).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import wraps
from http import HTTPStatus
from typing import Any

from django.conf import settings
from django.db.models import BigIntegerField, F, Sum
from django.db.models.functions import Cast
from django.http import HttpRequest, HttpResponse, JsonResponse

from editor.forms import human_bytes
from editor.models import Image, Job, Result
from editor.progress import describe_duration
from editor.refusals import count_refusal, quota_reason

# Seconds a client is asked to wait when the queue is full.
RETRY_AFTER_S = 30
# Room reserved for the result of a job that is not finished yet, per pixel of its image: a
# full-resolution RGBA cut-out compresses to at most about 4 bytes a pixel, and its mask and
# small previews fit in what PNG compression leaves over in practice. Once the result is
# stored, its real size (Result.size_bytes) counts instead.
RESERVED_BYTES_PER_PIXEL = 4
ACTIVE = (Job.Status.QUEUED, Job.Status.RUNNING)


class OverQuota(Exception):
    """A request refused by a cap; ``response()`` is what the client is told."""

    def __init__(self, message: str, status: int, retry_after_s: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status = status
        self.retry_after_s = retry_after_s

    def response(self) -> JsonResponse:
        count_refusal(quota_reason(self.status))
        response = JsonResponse({"error": self.message}, status=self.status)
        if self.retry_after_s is not None:
            response["Retry-After"] = str(self.retry_after_s)
        return response


def within_quotas(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
    """View decorator: an ``OverQuota`` raised by the view (by ``admit_*``, inside its
    transaction, which it rolls back) becomes the refusal's JSON answer."""

    @wraps(view)
    def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
        try:
            return view(request, *args, **kwargs)
        except OverQuota as refusal:
            return refusal.response()

    return guarded


# ---- Usage


def active_jobs(owner: str | None = None) -> int:
    """Jobs queued or running: ``owner``'s, or with None everyone's."""
    jobs = Job.objects.filter(status__in=ACTIVE)
    if owner is not None:
        jobs = jobs.filter(image__owner=owner)
    return jobs.count()


def stored_bytes(owner: str | None = None) -> int:
    """Bytes of stored originals, backgrounds and results: ``owner``'s, or everyone's."""
    images = Image.objects.all() if owner is None else Image.objects.filter(owner=owner)
    results = (
        Result.objects.all() if owner is None else Result.objects.filter(job__image__owner=owner)
    )
    sums = images.aggregate(originals=Sum("size_bytes"), backgrounds=Sum("background_bytes"))
    stored = results.aggregate(total=Sum("size_bytes"))["total"]
    return (sums["originals"] or 0) + (sums["backgrounds"] or 0) + (stored or 0)


def reserved_bytes(owner: str | None = None) -> int:
    """Room held for the results of jobs not finished yet (RESERVED_BYTES_PER_PIXEL)."""
    jobs = Job.objects.filter(status__in=ACTIVE)
    if owner is not None:
        jobs = jobs.filter(image__owner=owner)
    pixels = Cast(F("image__width"), BigIntegerField()) * F("image__height")
    total = jobs.aggregate(pixels=Sum(pixels, output_field=BigIntegerField()))["pixels"]
    return (total or 0) * RESERVED_BYTES_PER_PIXEL


def disk_usage(owner: str | None = None) -> int:
    """What counts against the disk budget: stored bytes plus reservations."""
    return stored_bytes(owner) + reserved_bytes(owner)


def job_reservation(image: Image) -> int:
    return image.width * image.height * RESERVED_BYTES_PER_PIXEL


# ---- Checks (each raises OverQuota)


def check_queue(owner: str | None) -> None:
    """Room for one more job of ``owner`` (None: a browser that owns nothing yet)?"""
    per_owner = settings.JOB_QUEUE_LIMIT_PER_OWNER
    if per_owner > 0 and owner is not None and active_jobs(owner) >= per_owner:
        raise OverQuota(
            f"You already have {per_owner} images waiting or being processed, the most one "
            "browser may have at once. Please wait until some of them are done, then try "
            "again.",
            HTTPStatus.TOO_MANY_REQUESTS,
            RETRY_AFTER_S,
        )
    total = settings.JOB_QUEUE_LIMIT
    if total > 0 and active_jobs() >= total:
        raise OverQuota(
            f"The server is busy: {total} images are waiting or being processed, the most it "
            f"takes at once. Please try again in {describe_duration(RETRY_AFTER_S)}.",
            HTTPStatus.SERVICE_UNAVAILABLE,
            RETRY_AFTER_S,
        )


def check_disk(owner: str | None, needed: int) -> None:
    """Room to store ``needed`` more bytes for ``owner`` (None: owns nothing yet)?"""
    total = settings.DISK_BUDGET_BYTES
    if total > 0 and disk_usage() + needed > total:
        raise OverQuota(
            "This server's storage for uploads is full. Please try again later, when older "
            "images have been deleted.",
            HTTPStatus.INSUFFICIENT_STORAGE,
        )
    per_owner = settings.DISK_BUDGET_PER_OWNER_BYTES
    if per_owner <= 0:
        return
    used = disk_usage(owner) if owner is not None else 0
    if used + needed > per_owner:
        raise OverQuota(
            f"You are using {human_bytes(used)} of your {human_bytes(per_owner)} of storage, "
            f"and this needs {human_bytes(needed)} more. Please delete some images you no "
            "longer need (in your gallery), then try again.",
            HTTPStatus.INSUFFICIENT_STORAGE,
        )


# ---- What the views call, inside the transaction that stores the new rows


def admit_upload(owner: str | None, size_bytes: int, pixels: int) -> None:
    """An upload of ``size_bytes`` with ``pixels`` pixels by ``owner`` (None: a browser that
    owns nothing yet), and the job that processes it. Call it before storing the file."""
    check_queue(owner)
    check_disk(owner, size_bytes + pixels * RESERVED_BYTES_PER_PIXEL)


def admit_rerun(image: Image) -> None:
    """One more job over ``image`` (its result will take room as well)."""
    check_queue(image.owner)
    check_disk(image.owner, job_reservation(image))


def admit_background(image: Image, size_bytes: int) -> None:
    """A custom background of ``size_bytes`` for ``image``, replacing the one it has."""
    check_disk(image.owner, max(0, size_bytes - image.background_bytes))
