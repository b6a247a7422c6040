"""Counting requests turned away, by reason, in /metrics (editor.operations' registry): one
call, ``count_refusal``, where a request is refused, and the reasons it may give."""

from __future__ import annotations

from http import HTTPStatus

from prometheus_client import Counter

from editor.operations import REGISTRY

# Every reason count_refusal is called with (each starts at 0, so every series exists).
REFUSAL_REASONS = (
    "rate_limit_uploads_owner",  # editor.ratelimit: RATE_LIMIT_UPLOADS
    "rate_limit_uploads_address",  # RATE_LIMIT_UPLOADS_PER_ADDRESS
    "rate_limit_downloads_owner",  # RATE_LIMIT_DOWNLOADS
    "rate_limit_downloads_address",  # RATE_LIMIT_DOWNLOADS_PER_ADDRESS
    "rate_limit_edits_owner",  # RATE_LIMIT_EDITS
    "rate_limit_edits_address",  # RATE_LIMIT_EDITS_PER_ADDRESS
    "queue_owner",  # editor.quotas: JOB_QUEUE_LIMIT_PER_OWNER (429)
    "queue_full",  # JOB_QUEUE_LIMIT (503)
    "disk_budget",  # DISK_BUDGET_BYTES or DISK_BUDGET_PER_OWNER_BYTES (507)
    "server_busy",  # editor.heavy: every heavy-operation slot taken (uploads and downloads)
    "bad_file",  # the upload view: unreadable request or file (400)
    "too_large",  # over MAX_UPLOAD_BYTES or MAX_UPLOAD_PIXELS (413)
    "unsupported_type",  # not an image format we take (415)
    "api_bad_request",  # the HTTP API (api.errors): bad parameters or image (400)
    "api_quota",  # a key's monthly quota used up (402)
    "api_auth",  # missing, unknown or revoked key (403)
    "api_too_large",  # over MAX_UPLOAD_BYTES or MAX_UPLOAD_PIXELS (413)
    "api_unsupported_type",  # not an image format or body type we take (415)
    "api_rate_limit",  # a key's rate limit (429)
    "api_busy",  # queue full, every heavy-operation slot taken or no result in time (503)
)
REFUSALS = Counter(
    "bgremover_refusals",
    "Requests turned away, by reason, since this process started: uploads, re-runs and "
    "background uploads; rate_limit_downloads_* and server_busy count downloads too, "
    "rate_limit_edits_* and server_busy saved touch-ups, api_* calls of the HTTP API.",
    ["reason"],
    registry=REGISTRY,
)
for _reason in REFUSAL_REASONS:
    REFUSALS.labels(_reason)

# OverQuota's status → its refusal reason.
QUOTA_REASONS = {
    HTTPStatus.TOO_MANY_REQUESTS: "queue_owner",
    HTTPStatus.SERVICE_UNAVAILABLE: "queue_full",
    HTTPStatus.INSUFFICIENT_STORAGE: "disk_budget",
}
# The upload view's refusal status → its reason.
UPLOAD_REJECTIONS = {
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "too_large",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "unsupported_type",
}


def count_refusal(reason: str) -> None:
    """Count one request turned away for ``reason`` (one of REFUSAL_REASONS)."""
    REFUSALS.labels(reason).inc()


def quota_reason(status: int) -> str:
    return QUOTA_REASONS.get(status, "queue_full")


def upload_rejection_reason(status: int) -> str:
    return UPLOAD_REJECTIONS.get(status, "bad_file")
