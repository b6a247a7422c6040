"""Waiting for a job to end without holding a thread: listen on the job's channel group (the
progress events the browser gets) and check the database between events, so a worker in
another process without a shared channel layer is still noticed within a poll."""

from __future__ import annotations

import asyncio
import uuid

from asgiref.sync import sync_to_async
from channels.layers import get_channel_layer

from editor.models import Job
from editor.progress import job_group

# How often the database is checked when no event arrives.
POLL_S = 0.5


def _finished(job_id: uuid.UUID) -> bool | None:
    """True when the job ended, False while it runs, None when it is gone."""
    status = Job.objects.filter(pk=job_id).values_list("status", flat=True).first()
    if status is None:
        return None
    return status in (Job.Status.DONE, Job.Status.FAILED)


async def wait_for_job(job_id: uuid.UUID, timeout_s: float) -> bool | None:
    """Wait until the job ends (True), is gone (None) or ``timeout_s`` passes (False)."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout_s
    layer = get_channel_layer()
    channel = await layer.new_channel() if layer is not None else None
    group = job_group(job_id)
    if channel is not None:
        await layer.group_add(group, channel)
    try:
        while True:
            state = await sync_to_async(_finished)(job_id)
            if state is not False:
                return state
            remaining = deadline - loop.time()
            if remaining <= 0:
                return False
            if channel is None:
                await asyncio.sleep(min(POLL_S, remaining))
                continue
            try:
                await asyncio.wait_for(layer.receive(channel), timeout=min(POLL_S, remaining))
            except TimeoutError:
                pass
    finally:
        if channel is not None:
            await layer.group_discard(group, channel)
