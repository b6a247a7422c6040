"""Storage and database agreement: files no row refers to, and rows whose files are gone.

``manage.py check_storage`` reports both; ``--repair`` deletes the orphaned files (and empty
folders), deletes images whose original is gone (nothing can be made without it), drops a
missing custom background from its image, and deletes results with a missing file, marking
their jobs failed so the owner can run them again.

Files younger than ``min_age`` are left out: an upload or a finishing job writes its files a
moment before the row that refers to them.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import timedelta

from django.core.files.storage import Storage, default_storage
from django.db import transaction
from django.utils import timezone

from editor.models import Image, JobGone, Result
from editor.progress import job_state, publish
from editor.results import delete_image, delete_result, local_folder

# Everything the app stores lives under this folder (see models.image_folder).
IMAGES_FOLDER = "images"
DEFAULT_MIN_AGE = timedelta(minutes=10)

LOST_RESULT = "The result's files were lost on the server. Please run it again."


@dataclass(frozen=True)
class MissingFile:
    """A row that refers to a file storage does not have."""

    kind: str  # "original", "background" or "result"
    row_id: uuid.UUID
    name: str

    def __str__(self) -> str:
        return f"{self.kind} of {self.row_id}: {self.name}"


@dataclass
class StorageReport:
    orphans: list[str] = field(default_factory=list)
    missing: list[MissingFile] = field(default_factory=list)

    @property
    def clean(self) -> bool:
        return not self.orphans and not self.missing


def _walk(storage: Storage, folder: str) -> Iterator[str]:
    try:
        subfolders, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        yield f"{folder}/{name}"
    for sub in subfolders:
        yield from _walk(storage, f"{folder}/{sub}")


def _referenced() -> set[str]:
    names: set[str] = set()
    for original, background in Image.objects.values_list("original", "background"):
        names.update(name for name in (original, background) if name)
    for result in Result.objects.all():
        names.update(stored.name for stored in result.stored_files())
    return names


def check_storage(
    storage: Storage = default_storage, min_age: timedelta = DEFAULT_MIN_AGE
) -> StorageReport:
    report = StorageReport()
    referenced = _referenced()
    settled_before = timezone.now() - min_age
    for name in _walk(storage, IMAGES_FOLDER):
        if name not in referenced and storage.get_modified_time(name) <= settled_before:
            report.orphans.append(name)
    for image in Image.objects.all():
        if not storage.exists(image.original.name):
            report.missing.append(MissingFile("original", image.id, image.original.name))
        elif image.background and not storage.exists(image.background.name):
            report.missing.append(MissingFile("background", image.id, image.background.name))
    for result in Result.objects.all():
        for stored in result.files():
            if not stored or not storage.exists(stored.name):
                report.missing.append(MissingFile("result", result.job_id, stored.name))
                break
    return report


def repair(report: StorageReport, storage: Storage = default_storage) -> None:
    """Fix what ``check_storage`` found (see the module doc)."""
    for name in report.orphans:
        storage.delete(name)
    for missing in report.missing:
        if missing.kind == "original":
            image = Image.objects.filter(pk=missing.row_id).first()
            if image is not None:
                delete_image(image)
        elif missing.kind == "background":
            Image.objects.filter(pk=missing.row_id).update(background="")
        else:
            _drop_lost_result(missing.row_id)
    _remove_empty_folders(storage, IMAGES_FOLDER)


def _drop_lost_result(job_id: uuid.UUID) -> None:
    result = Result.objects.select_related("job").filter(job_id=job_id).first()
    if result is None:
        return
    with transaction.atomic():
        delete_result(result)
        job = result.job
        try:
            job.lose_result(LOST_RESULT)
        except JobGone:
            return
    publish(job_state(job))


def _remove_empty_folders(storage: Storage, folder: str) -> bool:
    """Remove empty folders below ``folder`` (storages with real local folders only); True if
    it is empty itself."""
    path = local_folder(storage, folder)
    if path is None:
        return False
    try:
        subfolders, files = storage.listdir(folder)
    except FileNotFoundError:
        return False
    empty = [sub for sub in subfolders if _remove_empty_folders(storage, f"{folder}/{sub}")]
    for sub in empty:
        os.rmdir(os.path.join(path, sub))
    return not files and len(empty) == len(subfolders)
