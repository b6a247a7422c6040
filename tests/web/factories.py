"""Rows for web tests that do not need real files (ownership, states, websockets)."""

from __future__ import annotations

import uuid
from importlib import import_module

from django.conf import settings

from editor.models import Image, Job
from editor.ownership import OWNER_KEY


def make_image(owner: str, name: str = "photo.jpg") -> Image:
    image_id = uuid.uuid4()
    return Image.objects.create(
        id=image_id,
        owner=owner,
        original=f"images/{image_id}/original.jpg",
        original_name=name,
        size_bytes=1234,
        format="JPEG",
        width=40,
        height=30,
    )


def make_job(owner: str, **fields: object) -> Job:
    return Job.objects.create(image=make_image(owner), **fields)


def session_cookie(owner: str) -> str:
    """The value of a session cookie whose (server-side) session carries ``owner``."""
    session = import_module(settings.SESSION_ENGINE).SessionStore()
    session[OWNER_KEY] = owner
    session.save()
    assert session.session_key is not None
    return session.session_key
