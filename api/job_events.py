"""Webhooks for API jobs: when a job ends (editor.signals.job_finished, sent by whoever ended
it), a job submitted with a ``webhook_url`` gets its final state POSTed there, signed with
its key's webhook secret, after the transaction that ended it commits (api.webhooks).

Payload (JSON): ``{"event": "job.finished", "data": <the job, as GET /api/v1/jobs/<id>
shows it>}`` with absolute URLs on the host the job was submitted to.
"""

from __future__ import annotations

from typing import Any

from api.job_data import job_data
from api.models import ApiJob
from api.webhooks import enqueue_webhook
from editor.models import Job

EVENT = "job.finished"


def webhook_payload(api_job: ApiJob, job: Job) -> dict[str, Any]:
    return {"event": EVENT, "data": job_data(api_job, api_job.site_url, job)}


def on_job_finished(sender: type[Job], job: Job, **kwargs: Any) -> None:
    """Queue the job's webhook, if it has one (one indexed query for every other job)."""
    api_job = ApiJob.objects.filter(pk=job.pk).exclude(webhook_url="").first()
    if api_job is None:
        return
    enqueue_webhook(api_job.webhook_url, webhook_payload(api_job, job), api_job.key_id)
