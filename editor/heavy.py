"""A fixed number of heavy operations (decoding, inference, rendering) at once per process.

Each costs memory in proportion to the image's pixels; without a bound, ten uploads or
downloads at once multiply that. Requests wait up to settings.HEAVY_WAIT_S for a slot, then
get 503 with Retry-After; job workers wait as long as it takes (their job stays queued).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http import HTTPStatus

from django.conf import settings
from django.http import JsonResponse

from editor.refusals import count_refusal

# Seconds a client is asked to wait before trying again when every slot is taken.
RETRY_AFTER_S = 5

_slots: threading.BoundedSemaphore | None = None
_slots_size = 0
_slots_lock = threading.Lock()


class ServerBusy(Exception):
    """Every heavy-operation slot stayed taken for the whole wait."""


def _semaphore() -> threading.BoundedSemaphore:
    global _slots, _slots_size
    with _slots_lock:
        if _slots is None or _slots_size != settings.HEAVY_OPERATIONS:
            _slots, _slots_size = (
                threading.BoundedSemaphore(settings.HEAVY_OPERATIONS),
                (settings.HEAVY_OPERATIONS),
            )
        return _slots


@contextmanager
def heavy_operation(wait_s: float | None) -> Iterator[None]:
    """Hold one slot for the block, waiting at most ``wait_s`` seconds for it (None: as long
    as it takes); raises ServerBusy when none came free in time."""
    slots = _semaphore()
    if not slots.acquire(timeout=wait_s):
        raise ServerBusy
    try:
        yield
    finally:
        slots.release()


def busy_response() -> JsonResponse:
    count_refusal("server_busy")
    response = JsonResponse(
        {
            "error": "The server is busy with other images right now. "
            f"Please try again in {RETRY_AFTER_S} seconds."
        },
        status=HTTPStatus.SERVICE_UNAVAILABLE,
    )
    response["Retry-After"] = str(RETRY_AFTER_S)
    return response
