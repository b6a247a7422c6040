"""How the jobs API shows a job: one JSON object, the same in every answer (POST, GET, the
list), on the key's websocket and in the webhook's payload.

    {"id": "<job uuid>", "status": "queued|running|done|failed", "stage": "segmenting",
     "stage_label": "Finding the subject", "percent": 40, "finished": false, "error": null,
     "name": "shoe.jpg", "width": 1200, "height": 800, "matting": "auto",
     "created_at": "…Z", "finished_at": null, "expires_at": "…Z",
     "credits_charged": null, "webhook_url": null, "options": {"bg_color": "white"},
     "urls": {"self": "https://host/api/v1/jobs/<id>",
              "result": "https://host/api/v1/jobs/<id>/result" (null until done),
              "socket": "wss://host/ws/api/jobs/<id>/"}}

URLs are absolute, on the scheme and host the client used (``base``).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.urls import reverse

from api.models import ApiJob
from editor.models import Job


def _time(value: datetime | None) -> str | None:
    return value.isoformat().replace("+00:00", "Z") if value is not None else None


def socket_path(job_id: object) -> str:
    return f"/ws/api/jobs/{job_id}/"


def job_urls(job_id: object, base: str, done: bool) -> dict[str, str | None]:
    """The job's URLs on ``base`` (``https://host``, no trailing slash)."""
    socket_base = "wss" + base[len("https") :] if base.startswith("https") else "ws" + base[4:]
    return {
        "self": base + reverse("api:job", args=[job_id]),
        "result": base + reverse("api:job-result", args=[job_id]) if done else None,
        "socket": socket_base + socket_path(job_id),
    }


def job_data(api_job: ApiJob, base: str, job: Job | None = None) -> dict[str, Any]:
    """``api_job`` as the API shows it; ``job``: a fresher copy of its Job than the one it
    holds (e.g. the one a worker just ended)."""
    job = job or api_job.job
    image = job.image
    return {
        "id": str(job.id),
        "status": job.status,
        "stage": job.stage,
        "stage_label": job.stage_label,
        "percent": int(job.percent),
        "finished": job.finished,
        "error": job.error or None,
        "name": image.original_name,
        "width": image.width,
        "height": image.height,
        "matting": job.matting,
        "created_at": _time(job.created_at),
        "finished_at": _time(job.finished_at),
        "expires_at": _time(image.expires_at),
        "credits_charged": (
            f"{api_job.credits_charged.normalize():f}"
            if api_job.credits_charged is not None
            else None
        ),
        "webhook_url": api_job.webhook_url or None,
        "options": dict(api_job.render_fields),
        "urls": job_urls(job.id, base, job.status == Job.Status.DONE),
    }


def request_base(request: Any) -> str:
    """``scheme://host`` of a request (its Host checked against ALLOWED_HOSTS by Django)."""
    return f"{request.scheme}://{request.get_host()}"
