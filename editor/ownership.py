"""Who owns what: the one place every view, download, status URL and websocket asks.

Each browser gets a random owner id stored in its Django session (a signed, HttpOnly,
SameSite=Lax cookie). Anything owned by someone else answers 404, exactly like something
that does not exist, so ids cannot be probed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from django.contrib.sessions.backends.base import SessionBase
from django.core.exceptions import ValidationError
from django.http import Http404, HttpRequest

from editor.models import Image, Job
from editor.retention import keep_alive

OWNER_KEY = "owner"


def session_owner(session: Mapping[str, Any] | SessionBase | None) -> str | None:
    """The owner id recorded in a session, or None when it has none (never creates one)."""
    if session is None:
        return None
    owner = session.get(OWNER_KEY)
    return owner if isinstance(owner, str) and owner else None


def request_owner(request: HttpRequest) -> str:
    """The requesting browser's owner id, created on its first visit. A returning owner is
    still here, which keeps their images with RETENTION_HOURS = 0 (editor.retention)."""
    owner = session_owner(request.session)
    if owner is None:
        owner = uuid.uuid4().hex
        request.session[OWNER_KEY] = owner
    else:
        keep_alive(owner)
    return owner


def owned_images(request: HttpRequest) -> Any:
    """The requesting browser's images, newest first."""
    return Image.objects.owned_by(request_owner(request))


def owned_image(request: HttpRequest, image_id: uuid.UUID) -> Image:
    try:
        return owned_images(request).get(pk=image_id)
    except Image.DoesNotExist as exc:
        raise Http404("No such image") from exc


def owned_job(request: HttpRequest, job_id: uuid.UUID) -> Job:
    job = find_owned_job(request_owner(request), job_id)
    if job is None:
        raise Http404("No such job")
    return job


def find_owned_job(owner: str | None, job_id: uuid.UUID | str) -> Job | None:
    """The job if ``owner`` owns it, else None (also for malformed ids)."""
    if owner is None:
        return None
    try:
        return Job.objects.select_related("image").get(pk=job_id, image__owner=owner)
    except (Job.DoesNotExist, ValidationError, ValueError):
        return None
