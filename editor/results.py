"""Files in storage: storing what a job produced, loading a stored cut-out back for the
engine, rendering downloads, and deleting an image with everything that belongs to it.

Everything goes through Django's storage API; nothing here is served publicly (the views
check ownership first).
"""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.core.files.storage import Storage, default_storage
from django.db import transaction
from PIL import Image as PILImage

from bgremover.engine import pipeline
from bgremover.engine.compose import Background, subject_box
from bgremover.engine.encode import FORMATS, encode_image, encode_mask
from bgremover.engine.preprocess import DecodedImage, decode_image
from editor.models import Image, Job, Result, image_folder
from editor.presets import PRESETS

logger = logging.getLogger(__name__)

# Longest side of the copies the editor previews and the gallery shows.
PREVIEW_MAX_SIDE = 1600
THUMB_MAX_SIDE = 360


def _shrunk(pixels: np.ndarray, max_side: int) -> np.ndarray:
    height, width = pixels.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(PILImage.fromarray(pixels).resize(size, PILImage.Resampling.LANCZOS))


def store_result(job: Job, cutout: pipeline.Cutout, cutout_png: bytes) -> Result:
    """Save a finished job's files and its Result row."""
    rgba = cutout.rgba()
    preview_rgba = _shrunk(rgba, PREVIEW_MAX_SIDE)
    thumb_rgba = _shrunk(rgba, THUMB_MAX_SIDE)
    result = Result(
        job=job,
        subject_box=list(subject_box(cutout.alpha, 0.0)) if cutout.alpha.any() else [],
        notes=list(cutout.notes),
    )
    files = {
        "cutout": ("cutout.png", cutout_png),
        "mask": ("mask.png", encode_mask(cutout.alpha)),
        "preview_original": (
            "preview-original.jpg",
            encode_image(_shrunk(cutout.original, PREVIEW_MAX_SIDE), "jpeg"),
        ),
        "preview_cutout": ("preview-cutout.png", encode_image(preview_rgba, "png")),
        "thumb_original": (
            "thumb-original.jpg",
            encode_image(_shrunk(cutout.original, THUMB_MAX_SIDE), "jpeg"),
        ),
        "thumb_cutout": ("thumb-cutout.png", encode_image(thumb_rgba, "png")),
    }
    try:
        for field, (name, data) in files.items():
            getattr(result, field).save(name, ContentFile(data), save=False)
        result.size_bytes = sum(stored.size for stored in result.files())  # editor.quotas
        result.save()
    except BaseException:
        # E.g. the image was deleted while the job ran: leave no orphan files behind.
        _delete_files(result)
        raise
    return result


def _delete_files(result: Result) -> None:
    for stored in result.files():
        if stored:
            stored.storage.delete(stored.name)


def delete_result(result: Result) -> None:
    """Delete a Result row and its files (e.g. its job was ended while it was saved)."""
    if result.pk is not None:
        Result.objects.filter(pk=result.pk).delete()
    _delete_files(result)


def _decode_stored(storage: Storage, name: str) -> DecodedImage:
    with storage.open(name, "rb") as stored:
        return decode_image(stored.read(), max_pixels=None)


def load_cutout(result: Result) -> pipeline.Cutout:
    """The stored full-resolution cut-out with its original photo, ready to render."""
    original = _decode_stored(result.job.image.original.storage, result.job.image.original.name)
    stored = _decode_stored(result.cutout.storage, result.cutout.name)
    if stored.alpha is None:
        raise ValueError(f"stored cut-out {result.cutout.name} has no alpha channel")
    rgba = np.dstack([stored.rgb, stored.alpha])
    return pipeline.Cutout.from_rgba(rgba, original.rgb, original.icc_profile)


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
        decoded = _decode_stored(image.background.storage, image.background.name)
        return Background(kind="image", image=decoded.rgb)
    if kind == "blur":
        return Background(kind="blur", blur_strength=float(choice["blur"]))
    return Background()


@dataclass
class Download:
    content: bytes
    content_type: str
    filename: str


def render_download(image: Image, result: Result, choice: dict[str, Any]) -> Download:
    """Render the full-resolution file a person asked for, with the engine's own code."""
    output = choice["output"]
    options = pipeline.RenderOptions(
        background=background_from_choice(image, choice) if output == "cutout" else Background(),
        crop_margin=choice["margin"] / 100 if choice["crop"] else None,
        output=output,
        format="png" if output == "mask" else choice["format"],
    )
    content = pipeline.render(load_cutout(result), options)
    content_type, extension = FORMATS[options.format]
    suffix = "mask" if output == "mask" else "cutout"
    if output == "cutout" and choice["background"] != "transparent":
        suffix = f"{choice['background']}"
    return Download(content, content_type, f"{image.stem}-{suffix}{extension}")


def _delete_folder(storage: Storage, folder: str) -> None:
    try:
        subfolders, files = storage.listdir(folder)
    except FileNotFoundError:
        return
    for name in files:
        storage.delete(f"{folder}/{name}")
    for sub in subfolders:
        _delete_folder(storage, f"{folder}/{sub}")
    # FileSystemStorage leaves empty folders behind; remove them where the storage has paths.
    try:
        path = storage.path(folder)
    except NotImplementedError:
        return
    try:
        os.rmdir(path)
    except OSError:
        logger.warning("could not remove storage folder %s", folder)


def delete_image(image: Image) -> None:
    """Delete an image, its jobs and results, and every file they stored."""
    folder = image_folder(image.id)
    storage = image.original.storage or default_storage
    with transaction.atomic():
        image.delete()
    # After the rows: a job finishing right now finds its image gone and stores nothing.
    _delete_folder(storage, folder)
