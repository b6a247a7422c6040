"""Who owns what: the one place every view, download, status URL and websocket asks.

Each browser that uploads gets a random owner id stored in its Django session (a signed,
HttpOnly, SameSite=Lax cookie). Anything owned by someone else answers 404, exactly like
something that does not exist, so ids cannot be probed.

Only an upload creates an owner (``request_owner``); everything else asks ``current_owner``,
which creates nothing, so visits, 404s and scripts without a cookie leave no session row. A
browser without an owner simply owns nothing yet. Each upload saves the session again, so it
expires with the owner's newest image (settings.SESSION_COOKIE_AGE follows the retention).
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


def current_owner(request: HttpRequest) -> str | None:
    """The requesting browser's owner id, or None before its first upload (creates nothing).
    A returning owner is still here, which keeps their images with RETENTION_HOURS = 0
    (editor.retention), and their session with them."""
    owner = session_owner(request.session)
    if owner is not None and keep_alive(owner):
        request.session.modified = True  # saved again: its expiry moves forward too
    return owner


def request_owner(request: HttpRequest) -> str:
    """The uploading browser's owner id, created by its first upload. For the upload view
    only: every other request must use ``current_owner``, which never creates a session."""
    owner = current_owner(request)
    if owner is None:
        owner = uuid.uuid4().hex
        request.session[OWNER_KEY] = owner
    # Saved again with this upload: the session lives as long as the newest image.
    request.session.modified = True
    return owner


def owned_images(request: HttpRequest) -> Any:
    """The requesting browser's images, newest first (none without an owner)."""
    owner = current_owner(request)
    if owner is None:
        return Image.objects.none()
    return Image.objects.owned_by(owner)


def owned_image(request: HttpRequest, image_id: uuid.UUID) -> Image:
    try:
        return owned_images(request).get(pk=image_id)
    except Image.DoesNotExist as exc:
        raise Http404("No such image") from exc


def owned_job(request: HttpRequest, job_id: uuid.UUID) -> Job:
    job = find_owned_job(current_owner(request), job_id)
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
