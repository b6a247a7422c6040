"""Storing a checked upload as an image and queueing its job: the browser's upload view and
the HTTP API (api) both come through here, so both share the job queue and retention."""

from __future__ import annotations

from django.core.files.base import ContentFile

from editor.forms import ImageUploadForm
from editor.models import Image, Job
from editor.tasks import enqueue_job


def store_upload(
    form: ImageUploadForm,
    name: str,
    owner: str,
    matting: str = Job.Matting.AUTO,
    render_settings: dict[str, str] | None = None,
) -> Job:
    """Store ``form``'s checked file as a new image of ``owner`` and queue its job (sent when
    the surrounding transaction commits). Admit it first (editor.quotas.admit_upload), inside
    the same transaction. ``render_settings``: download settings chosen for its batch
    (Image.render_settings)."""
    info = form.info
    assert info is not None, "call form.is_valid() first"
    image = Image(
        owner=owner,
        original_name=name,
        size_bytes=len(form.payload),
        format=info.format,
        width=info.width,
        height=info.height,
        render_settings=render_settings or {},
    )
    image.original.save(form.storage_name("original"), ContentFile(form.payload), save=False)
    image.save()
    job = Job.objects.create(image=image, matting=matting)
    enqueue_job(job)
    return job
