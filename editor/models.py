"""What people upload, the jobs that process it and what those jobs produce.

The database is the source of truth for job state: the websocket and the status URL both
read it, so a reload or a late subscriber never misses how a job ended.
"""

from __future__ import annotations

import re
import uuid
from datetime import timedelta

from django.conf import settings
from django.db import models
from django.utils import timezone

from editor.signals import announce_finished

# Stage names in the order the engine reports them (see notes/CONTRACT.md), with labels.
STAGES: dict[str, str] = {
    "queued": "Waiting for a free worker",
    "decoding": "Decoding",
    "segmenting": "Finding the subject",
    "refining": "Refining edges",
    "matting": "Matting hair and fine detail",
    "composing": "Composing",
    "encoding": "Encoding",
    "saving": "Saving",
    "done": "Done",
}


# Characters replaced in download names: path separators, Windows' reserved characters,
# quotes and control characters.
_UNSAFE_IN_FILENAMES = re.compile(r'[<>:"/\\|?*;\x00-\x1f\x7f]')
DOWNLOAD_STEM_MAX = 120


def default_expiry() -> timezone.datetime:
    """When a new upload expires: RETENTION_HOURS from now, or with RETENTION_HOURS = 0,
    RETENTION_IDLE_MINUTES from now (moved forward while the owner is active; see
    editor.retention)."""
    if settings.RETENTION_HOURS > 0:
        return timezone.now() + timedelta(hours=settings.RETENTION_HOURS)
    return timezone.now() + timedelta(minutes=settings.RETENTION_IDLE_MINUTES)


def image_folder(image_id: uuid.UUID) -> str:
    """Storage folder holding everything that belongs to one uploaded image."""
    return f"images/{image_id}"


def _original_path(instance: Image, filename: str) -> str:
    return f"{image_folder(instance.id)}/{filename}"


def _background_path(instance: Image, filename: str) -> str:
    return f"{image_folder(instance.id)}/{filename}"


def _result_path(instance: Result, filename: str) -> str:
    return f"{image_folder(instance.job.image_id)}/{instance.job_id}/{filename}"


class ImageQuerySet(models.QuerySet["Image"]):
    def owned_by(self, owner: str) -> ImageQuerySet:
        return self.filter(owner=owner)

    def with_latest(self) -> ImageQuerySet:
        """These images with their jobs (newest first) and results fetched in two queries in
        all, so that a list of them asks nothing more per image for latest_job and
        latest_result."""
        newest_first = Job.objects.order_by("-created_at").select_related("result")
        return self.prefetch_related(
            models.Prefetch("jobs", queryset=newest_first, to_attr="newest_jobs")
        )


class Image(models.Model):
    """An uploaded photo and its owner's custom background, kept until ``expires_at``."""

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    owner = models.CharField(max_length=64, db_index=True)
    original = models.FileField(upload_to=_original_path, max_length=255)
    original_name = models.CharField(max_length=255)
    size_bytes = models.PositiveBigIntegerField()
    format = models.CharField(max_length=16)
    width = models.PositiveIntegerField()
    height = models.PositiveIntegerField()
    # An uploaded custom background for the editor (optional).
    background = models.FileField(upload_to=_background_path, max_length=255, blank=True)
    # The stored background's size (0 without one), for the disk budget (editor.quotas).
    background_bytes = models.PositiveBigIntegerField(default=0)
    # The owner's touch-ups (bgremover.engine.edits data, full-resolution coordinates),
    # replayed on every result of this image; edits_version counts saves, so an editor that
    # saves over a newer list than it saw is told (409) instead of losing someone's work.
    edits = models.JSONField(default=list, blank=True)
    edits_version = models.PositiveIntegerField(default=0)
    # Download settings chosen on the upload page for a batch (RenderForm's fields as sent,
    # e.g. {"background": "color", "color": "#ffffff"}; empty: none): the editor opens with
    # them and the gallery's ZIP uses them (editor.batch). Kept as sent, not as cleaned data,
    # so they are checked again by the RenderForm of the day when used.
    render_settings = models.JSONField(default=dict, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    expires_at = models.DateTimeField(default=default_expiry, db_index=True)

    objects = ImageQuerySet.as_manager()

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"{self.original_name} ({self.id})"

    @property
    def stem(self) -> str:
        """The uploaded file's name without its extension, fit for download names: no
        characters that file systems or the Content-Disposition header treat specially."""
        name = _UNSAFE_IN_FILENAMES.sub("_", self.original_name.rsplit(".", 1)[0])
        return name.strip(" .")[:DOWNLOAD_STEM_MAX] or "image"

    def latest_job(self) -> Job | None:
        if hasattr(self, "newest_jobs"):  # ImageQuerySet.with_latest
            return self.newest_jobs[0] if self.newest_jobs else None
        return self.jobs.order_by("-created_at").first()

    def latest_result(self) -> Result | None:
        if hasattr(self, "newest_jobs"):  # ImageQuerySet.with_latest
            done = (job for job in self.newest_jobs if job.status == Job.Status.DONE)
            return next((job.result for job in done if hasattr(job, "result")), None)
        return (
            Result.objects.filter(job__image=self, job__status=Job.Status.DONE)
            .select_related("job")
            .order_by("-job__created_at")
            .first()
        )


class JobGone(Exception):
    """A job's state change found its row deleted (its image was deleted or purged) or in a
    state the change may not start from (ended elsewhere, or taken over by another run): the
    caller stops without writing anything more."""


class Job(models.Model):
    """One run of the engine over an image: queued → running → done | failed.

    Every change of state goes through ``transition`` (via the named methods below), with
    the moves of TRANSITIONS, as one conditional UPDATE: a late or duplicate writer (a worker
    that was presumed dead, a sweep racing a finish) finds nothing to update and gets JobGone
    instead of overwriting what happened meanwhile.
    """

    class Status(models.TextChoices):
        QUEUED = "queued", "Queued"
        RUNNING = "running", "Running"
        DONE = "done", "Done"
        FAILED = "failed", "Failed"

    class Matting(models.TextChoices):
        AUTO = "auto", "Automatic"
        ON = "on", "On"
        OFF = "off", "Off"

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    image = models.ForeignKey(Image, on_delete=models.CASCADE, related_name="jobs")
    status = models.CharField(max_length=16, choices=Status.choices, default=Status.QUEUED)
    stage = models.CharField(max_length=32, default="queued")
    percent = models.PositiveSmallIntegerField(default=0)
    error = models.TextField(blank=True)
    matting = models.CharField(max_length=8, choices=Matting.choices, default=Matting.AUTO)
    # The django-tasks result id, so an operator can find the task behind a job.
    task_id = models.CharField(max_length=64, blank=True)
    created_at = models.DateTimeField(default=timezone.now, db_index=True)
    started_at = models.DateTimeField(null=True, blank=True)
    finished_at = models.DateTimeField(null=True, blank=True)
    # How many times a worker started it (a crashed worker's job is started again).
    attempts = models.PositiveSmallIntegerField(default=0)
    # The running worker's mark: only that run may write progress or the outcome.
    run_token = models.CharField(max_length=32, blank=True)
    # Written by the running worker every few seconds; a stale one means the worker died.
    heartbeat_at = models.DateTimeField(null=True, blank=True, db_index=True)
    # Seconds spent in each stage by the last run, e.g. {"segmenting": 0.8, ...}.
    stage_seconds = models.JSONField(default=dict, blank=True)

    # transition name → (states it may start from, state it leads to)
    TRANSITIONS: dict[str, tuple[tuple[str, ...], str]] = {
        "start": ((Status.QUEUED,), Status.RUNNING),
        "progress": ((Status.RUNNING,), Status.RUNNING),
        "succeed": ((Status.RUNNING,), Status.DONE),
        "fail": ((Status.QUEUED, Status.RUNNING), Status.FAILED),
        "requeue": ((Status.RUNNING, Status.FAILED), Status.QUEUED),
        "lose_result": ((Status.DONE,), Status.FAILED),
    }

    class Meta:
        ordering = ["-created_at"]

    def __str__(self) -> str:
        return f"job {self.id} ({self.status})"

    def transition(self, name: str, token: str | None = None, **fields: object) -> None:
        """Apply transition ``name`` with ``fields`` if the row's state allows it (and, with
        ``token``, only while that run owns the job); updates this object too. Raises JobGone
        when the row is gone or elsewhere."""
        sources, target = self.TRANSITIONS[name]
        rows = Job.objects.filter(pk=self.pk, status__in=sources)
        if token is not None:
            rows = rows.filter(run_token=token)
        values = {"status": target, **fields}
        if not rows.update(**values):
            raise JobGone(str(self.pk))
        for field_name, value in values.items():
            setattr(self, field_name, value)

    def start(self, token: str) -> None:
        now = timezone.now()
        self.transition(
            "start",
            stage="decoding",
            percent=0,
            error="",
            started_at=now,
            heartbeat_at=now,
            run_token=token,
            attempts=self.attempts + 1,
            stage_seconds={},
        )

    def record_progress(self, token: str, stage: str, percent: int) -> None:
        self.transition(
            "progress", token, stage=stage, percent=percent, heartbeat_at=timezone.now()
        )

    def beat(self, token: str) -> None:
        """The running worker is alive (see heartbeat_at)."""
        self.transition("progress", token, heartbeat_at=timezone.now())

    def succeed(self, token: str, stage_seconds: dict[str, float]) -> None:
        self.transition(
            "succeed",
            token,
            stage="done",
            percent=100,
            error="",
            finished_at=timezone.now(),
            stage_seconds=stage_seconds,
        )
        announce_finished(self)

    def fail(self, reason: str, token: str | None = None, **fields: object) -> None:
        """End as failed with ``reason`` (shown to the owner as it is)."""
        self.transition("fail", token, error=reason, finished_at=timezone.now(), **fields)
        announce_finished(self)

    def requeue(self) -> None:
        """Back to the queue (a new run; the old one's token no longer writes anything)."""
        self.transition(
            "requeue",
            stage="queued",
            percent=0,
            error="",
            run_token="",
            heartbeat_at=None,
            started_at=None,
            finished_at=None,
        )

    def lose_result(self, reason: str) -> None:
        """A finished job whose stored result went missing: failed, with ``reason``."""
        self.transition("lose_result", error=reason)

    @property
    def finished(self) -> bool:
        return self.status in (self.Status.DONE, self.Status.FAILED)

    @property
    def stage_label(self) -> str:
        return STAGES.get(self.stage, self.stage.capitalize())


class Result(models.Model):
    """The files a finished job produced. The full-resolution RGBA cut-out is the source
    every download is rendered from; the previews are smaller copies for the browser."""

    job = models.OneToOneField(Job, on_delete=models.CASCADE, related_name="result")
    cutout = models.FileField(upload_to=_result_path, max_length=255)
    mask = models.FileField(upload_to=_result_path, max_length=255)
    # Browser-friendly copies (the original may be HEIC or TIFF, which browsers cannot show).
    preview_original = models.FileField(upload_to=_result_path, max_length=255)
    preview_cutout = models.FileField(upload_to=_result_path, max_length=255)
    thumb_original = models.FileField(upload_to=_result_path, max_length=255)
    thumb_cutout = models.FileField(upload_to=_result_path, max_length=255)
    # Bounding box of the subject (alpha > 0) in full-resolution pixels: left, top, right, bottom.
    subject_box = models.JSONField(default=list)
    notes = models.JSONField(default=list)
    # The preview and thumbnail with the image's edits applied (empty without edits), and
    # the Image.edits_version they show; downloads apply the edits at full resolution.
    edited_preview = models.FileField(upload_to=_result_path, max_length=255, blank=True)
    edited_thumb = models.FileField(upload_to=_result_path, max_length=255, blank=True)
    edits_version = models.PositiveIntegerField(default=0)
    # What the editor shows of the edited cut-out: {"parts": its separate parts (engine.edits
    # CutoutObject as data), "subject_box": left, top, right, bottom of alpha > 0}.
    edited_info = models.JSONField(default=dict, blank=True)
    # All its files together, for the disk budget (editor.quotas); set when it is stored.
    size_bytes = models.PositiveBigIntegerField(default=0)
    created_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"result of {self.job_id}"

    def stored_files(self) -> list[models.fields.files.FieldFile]:
        """Every file it holds: the job's products and any edited copies."""
        edited = [stored for stored in (self.edited_preview, self.edited_thumb) if stored]
        return self.files() + edited

    def shows_edits(self, image: Image) -> bool:
        """Whether its edited copies are those of ``image``'s current edits."""
        return (
            bool(image.edits)
            and bool(self.edited_preview)
            and (self.edits_version == image.edits_version)
        )

    def files(self) -> list[models.fields.files.FieldFile]:
        return [
            self.cutout,
            self.mask,
            self.preview_original,
            self.preview_cutout,
            self.thumb_original,
            self.thumb_cutout,
        ]
