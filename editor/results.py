"""Files in storage: storing what a job produced, loading a stored cut-out back for the
engine, rendering downloads, and deleting an image with everything that belongs to it.

Everything goes through Django's storage API; nothing here is served publicly (the views
check ownership first).
"""

from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from django.core.files import File
from django.core.files.base import ContentFile
from django.core.files.storage import FileSystemStorage, Storage, default_storage
from django.db import transaction
from django.db.models.fields.files import FieldFile

from bgremover.engine import pipeline
from bgremover.engine.compose import Background
from bgremover.engine.edits import Edit, apply_edits, parse_edits
from bgremover.engine.encode import FORMATS
from bgremover.engine.layout import Canvas
from bgremover.engine.preprocess import DecodedImage, decode_image
from bgremover.engine.products import PRODUCT_FILES, Products
from bgremover.engine.render_options import parse_canvas
from bgremover.engine.shadow import Shadow
from editor.models import Image, Job, JobGone, Result, image_folder
from editor.presets import PRESETS
from editor.progress import ProgressReporter, job_state, publish

logger = logging.getLogger(__name__)


class _WrittenFile(File):
    """A finished file on local disk: FileSystemStorage moves it into place (a rename on the
    same file system) instead of reading and writing it again; other storages read it."""

    def temporary_file_path(self) -> str:
        return self.file.name


def store_files(job: Job, products: Products) -> Result:
    """Move the files a job's engine process wrote into storage, on an unsaved Result (saved
    by finish_with_result, so no page ever shows a result whose files are not all there)."""
    result = Result(job=job, subject_box=products.subject_box, notes=products.notes)
    try:
        for field, path in products.files.items():
            with open(path, "rb") as written:
                product = _WrittenFile(written)
                getattr(result, field).save(PRODUCT_FILES[field], product, save=False)
    except BaseException:
        _delete_files(result)
        raise
    return result


def finish_with_result(reporter: ProgressReporter, result: Result) -> None:
    """Save ``result`` and mark its job done in one transaction, only while the job still
    runs: a job deleted or ended meanwhile raises JobGone and is never brought back."""
    job = reporter.job
    with transaction.atomic():
        running = Job.objects.select_for_update().filter(
            pk=job.pk, status=Job.Status.RUNNING, run_token=reporter.token
        )
        if not running.exists():
            raise JobGone(str(job.pk))
        result.size_bytes = sum(stored.size for stored in result.stored_files())  # editor.quotas
        result.save()
        reporter.succeed(tell_watchers=False)
    publish(job_state(job))


def discard_unfinished(job: Job, result: Result | None) -> None:
    """Remove what an unfinished job stored: its result's files (and row, if saved), and the
    image's whole folder when the image itself was deleted meanwhile."""
    if result is not None:
        delete_result(result)
    remove_folder_of_deleted(job.image)


def remove_folder_of_deleted(image: Image) -> None:
    """Remove ``image``'s whole folder if the image was deleted meanwhile: a late write (a
    result, edited copies) may have made the folder again after the delete removed it."""
    if not Image.objects.filter(pk=image.pk).exists():
        _delete_folder(image.original.storage or default_storage, image_folder(image.pk))


def _delete_files(result: Result) -> None:
    for stored in result.stored_files():
        if stored:
            stored.storage.delete(stored.name)


def delete_result(result: Result) -> None:
    """Delete a Result row and its files (e.g. its job was ended while it was saved)."""
    if result.pk is not None:
        Result.objects.filter(pk=result.pk).delete()
    _delete_files(result)


def decode_stored(field_file: FieldFile) -> DecodedImage:
    """A stored image file, decoded (our own files: no size limit beyond the upload's)."""
    with field_file.storage.open(field_file.name, "rb") as stored:
        return decode_image(stored, max_pixels=None)


def load_cutout(
    result: Result, with_original: bool = False, edits: Sequence[Edit] = ()
) -> pipeline.Cutout:
    """The stored full-resolution cut-out with ``edits`` applied, ready to render; its
    original photo too when ``with_original`` or when edits need it (decoding costs memory
    per pixel, so only a blur background or edits load it)."""
    stored = decode_stored(result.cutout)
    if stored.alpha is None:
        raise ValueError(f"stored cut-out {result.cutout.name} has no alpha channel")
    original = None
    if with_original or edits:
        original = decode_stored(result.job.image.original).rgb
    cutout = pipeline.Cutout.from_planes(stored.rgb, stored.alpha, original, stored.icc_profile)
    if edits:
        edited = apply_edits(original, cutout.foreground, cutout.alpha, edits)
        cutout.foreground, cutout.alpha = edited.foreground, edited.alpha
    return cutout


def background_from_choice(image: Image, choice: dict[str, Any]) -> Background:
    """Turn a validated RenderForm's data into the engine's Background."""
    kind = choice["background"]
    if kind == "color":
        hex_color = choice["color"].lstrip("#")
        return Background(
            kind="color", color=tuple(int(hex_color[i : i + 2], 16) for i in (0, 2, 4))
        )
    if kind == "preset":
        decoded = decode_image(PRESETS[choice["preset"]].file_path().read_bytes())
        return Background(kind="image", image=decoded.rgb)
    if kind == "custom":
        if not image.background:
            raise LookupError("Upload a background picture first.")
        decoded = decode_stored(image.background)
        return Background(kind="image", image=decoded.rgb)
    if kind == "blur":
        return Background(kind="blur", blur_strength=float(choice["blur"]))
    return Background()


@dataclass
class Download:
    content: bytes
    content_type: str
    filename: str


def render_options_from_choice(image: Image, choice: dict[str, Any]) -> pipeline.RenderOptions:
    """A validated RenderForm's cleaned data as the engine's RenderOptions: the one place
    that turns the editor's fields (background, crop, canvas, scale, position, shadow, output,
    format) into what the engine renders; the editor's preview (preview.js) reads the same
    fields the same way."""
    output = choice["output"]
    canvas = Canvas()
    if choice.get("canvas") == "custom":
        canvas = Canvas("pixels", choice["canvas_width"], choice["canvas_height"])
    elif choice.get("canvas") not in (None, "original"):
        canvas = parse_canvas(choice["canvas"])
    scale = choice.get("scale")
    position = None
    if choice.get("position_x") is not None and choice.get("position_y") is not None:
        position = (choice["position_x"] / 100, choice["position_y"] / 100)
    shadow = None
    if choice.get("shadow") and output == "cutout" and choice["shadow_opacity"] > 0:
        shadow = Shadow(
            direction=float(choice["shadow_direction"]),
            distance=choice["shadow_distance"] / 100,
            softness=choice["shadow_softness"] / 100,
            opacity=float(choice["shadow_opacity"]),
        )
    return pipeline.RenderOptions(
        background=background_from_choice(image, choice) if output == "cutout" else Background(),
        crop_margin=choice["margin"] / 100 if choice["crop"] else None,
        output=output,
        format="png" if output == "mask" else choice["format"],
        canvas=canvas,
        scale=None if scale is None else scale / 100,
        position=position,
        shadow=shadow,
    )


def render_download(image: Image, result: Result, choice: dict[str, Any]) -> Download:
    """Render the full-resolution file a person asked for, with the engine's own code."""
    output = choice["output"]
    options = render_options_from_choice(image, choice)
    edits = parse_edits(image.edits, image.width, image.height)
    cutout = load_cutout(result, options.background.kind == "blur", edits)
    content = pipeline.render(cutout, options)
    content_type, extension = FORMATS[options.format]
    suffix = "mask" if output == "mask" else "cutout"
    if output == "cutout" and choice["background"] != "transparent":
        suffix = f"{choice['background']}"
    return Download(content, content_type, f"{image.stem}-{suffix}{extension}")


def replace_background(image: Image, filename: str, content: bytes) -> bool:
    """Store ``content`` as the image's custom background, replacing any earlier one; False
    (and nothing kept) when the image was deleted meanwhile. Only an UPDATE touches the row:
    saving the stale object would INSERT a deleted image back."""
    field = image.background.field
    storage = image.background.storage
    name = storage.save(field.generate_filename(image, filename), ContentFile(content))
    with transaction.atomic():
        row = Image.objects.select_for_update().filter(pk=image.pk)
        previous = row.values_list("background", flat=True).first()
        if previous is not None:
            row.update(background=name, background_bytes=len(content))
    if previous is None:
        storage.delete(name)
        _delete_folder(storage, image_folder(image.id))
        return False
    if previous and previous != name:
        storage.delete(previous)
    image.background.name, image.background_bytes = name, len(content)
    return True


def local_folder(storage: Storage, folder: str) -> str | None:
    """``folder``'s path on this machine when ``storage`` keeps files in real local folders
    (FileSystemStorage), else None: S3 and the like have no paths, and a path() answer alone
    proves nothing (InMemoryStorage names a folder under MEDIA_ROOT that does not exist)."""
    if not isinstance(storage, FileSystemStorage):
        return None
    return storage.path(folder)


def _delete_folder(storage: Storage, folder: str) -> None:
    try:
        subfolders, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        storage.delete(f"{folder}/{name}")
    for sub in subfolders:
        _delete_folder(storage, f"{folder}/{sub}")
    # FileSystemStorage leaves empty folders behind; other storages have no real folders.
    path = local_folder(storage, folder)
    if path is None:
        return
    try:
        os.rmdir(path)
    except OSError:
        logger.warning("could not remove storage folder %s", folder)


def delete_image(image: Image, expired_by: datetime | None = None) -> bool:
    """Delete an image, its jobs and results, and every file they stored; with
    ``expired_by``, only if it still expires by then (its owner may have come back since it
    was found expired). False when it was kept."""
    folder = image_folder(image.id)
    storage = image.original.storage or default_storage
    rows = Image.objects.filter(pk=image.pk)
    if expired_by is not None:
        rows = rows.filter(expires_at__lte=expired_by)
    with transaction.atomic():
        deleted, _ = rows.delete()
    if not deleted and expired_by is not None:
        return False
    # After the rows: a job finishing right now finds its image gone and stores nothing.
    _delete_folder(storage, folder)
    return True
