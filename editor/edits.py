"""Touch-ups in storage: saving an image's edits (versioned), and the edited preview,
thumbnail and part list its latest result shows. Downloads replay the edits on the full-
resolution cut-out (results.render_download), so the stored files stay small.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

import numpy as np
from django.core.files.base import ContentFile
from django.db import transaction
from django.urls import reverse

from bgremover.engine.edits import (
    CutoutObject,
    Edit,
    apply_edits,
    edits_as_data,
    find_objects,
    parse_edits,
)
from bgremover.engine.encode import encode_image
from bgremover.engine.layout import alpha_box
from bgremover.engine.products import ProductOptions, shrunk
from editor.models import Image, JobGone, Result
from editor.results import decode_stored, remove_folder_of_deleted

# Result field → stored file name of the edited copies.
EDITED_FILES = {"edited_preview": "preview-edited.png", "edited_thumb": "thumb-edited.png"}


class EditConflict(Exception):
    """The image's edits changed since the editor loaded them (another tab saved)."""


def _preview_cutout(result: Result) -> tuple[np.ndarray, np.ndarray]:
    """The automatic cut-out's colour and alpha planes at preview size."""
    cutout = decode_stored(result.preview_cutout)
    alpha = cutout.alpha
    if alpha is None:  # a fully opaque cut-out may be stored without an alpha channel
        alpha = np.full(cutout.rgb.shape[:2], 255, dtype=np.uint8)
    return cutout.rgb, alpha


def _info(alpha: np.ndarray, scale: float, parts: list[CutoutObject]) -> dict[str, Any]:
    """The editor's facts about a cut-out whose ``alpha`` is at ``scale`` of full size."""
    box = alpha_box(alpha)
    return {
        "parts": [asdict(part) for part in parts],
        "subject_box": [round(side / scale) for side in box] if box else [],
    }


def automatic_info(result: Result) -> dict[str, Any]:
    """The editor's facts about ``result``'s automatic cut-out (its parts, from the preview;
    its subject box, from the job)."""
    _, alpha = _preview_cutout(result)
    scale = alpha.shape[1] / result.job.image.width
    parts = find_objects(alpha, scale)
    return {"parts": [asdict(part) for part in parts], "subject_box": result.subject_box}


def _edited_copies(
    result: Result, edits: Sequence[Edit]
) -> tuple[dict[str, bytes], dict[str, Any]]:
    """The edited preview and thumbnail of ``result`` as PNG bytes, and the editor's facts."""
    photo = decode_stored(result.preview_original).rgb
    colours, alpha = _preview_cutout(result)
    scale = alpha.shape[1] / result.job.image.width
    edited = apply_edits(photo, colours, alpha, edits, scale, with_objects=True)
    rgba = np.dstack((edited.foreground, edited.alpha))
    copies = {
        "edited_preview": encode_image(rgba, "png"),
        "edited_thumb": encode_image(shrunk(rgba, ProductOptions().thumb_side), "png"),
    }
    return copies, _info(edited.alpha, scale, edited.objects)


def _store(result: Result, edits: Sequence[Edit], version: int, *, replace: bool) -> int:
    """Write ``result``'s edited copies for ``edits``, only while its image is at edits
    ``version``; with ``replace``, ``edits`` also become the image's edits (the version goes
    up by one). The engine's work comes first, the rows change in one transaction, so a
    failure, a conflict (EditConflict) or a deleted image or result (JobGone) keeps nothing.
    Returns the version the copies show."""
    copies, info = _edited_copies(result, edits) if edits else ({}, {})
    names = {field: "" for field in EDITED_FILES}
    storage = result.preview_cutout.storage
    field = result.edited_preview.field
    shown = version + 1 if replace else version
    try:
        for name, data in copies.items():
            target = field.generate_filename(result, EDITED_FILES[name])
            names[name] = storage.save(target, ContentFile(data))
        products = sum(stored.size for stored in result.files())
        with transaction.atomic():
            image = Image.objects.select_for_update().filter(pk=result.job.image_id).first()
            if image is None or not Result.objects.filter(pk=result.pk).exists():
                raise JobGone(str(result.job_id))
            if image.edits_version != version:
                raise EditConflict
            if replace:
                Image.objects.filter(pk=image.pk).update(
                    edits=edits_as_data(edits), edits_version=shown
                )
            previous = Result.objects.filter(pk=result.pk).values(*EDITED_FILES).get()
            Result.objects.filter(pk=result.pk).update(
                **names,
                edits_version=shown,
                edited_info=info,
                size_bytes=products + sum(len(data) for data in copies.values()),
            )
    except BaseException:
        for name in names.values():
            if name:
                storage.delete(name)
        raise
    for old in previous.values():
        if old and old not in names.values():
            storage.delete(old)
    for name, value in names.items():
        getattr(result, name).name = value
    result.edits_version, result.edited_info = shown, info
    return shown


def save_edits(image: Image, result: Result, edits: Sequence[Edit], seen_version: int) -> None:
    """Replace ``image``'s edits with ``edits`` if it is still at ``seen_version`` (else
    EditConflict; JobGone when it was deleted), with ``result``'s edited copies for them."""
    current = Image.objects.filter(pk=image.pk).values_list("edits_version", flat=True).first()
    if current is None:
        raise JobGone(str(image.pk))
    if current != seen_version:
        raise EditConflict  # before the engine's work, which would be thrown away
    image.edits_version = _store(result, edits, seen_version, replace=True)
    image.edits = edits_as_data(edits)


def refresh_edited(image: Image, result: Result) -> None:
    """Bring ``result``'s edited copies up to ``image``'s current edits (after a re-run);
    nothing when they already are."""
    if not image.edits or result.shows_edits(image):
        return
    try:
        edits = parse_edits(image.edits, image.width, image.height)
        _store(result, edits, image.edits_version, replace=False)
    except (EditConflict, JobGone, FileNotFoundError):
        # Changed or deleted meanwhile: whoever changed it stores its own copies.
        remove_folder_of_deleted(image)


def edit_state(image: Image, result: Result) -> dict[str, Any]:
    """What the editor needs to show and continue the image's edits."""
    edited = result.shows_edits(image)
    version = f"?v={image.edits_version}" if edited else ""
    return {
        "version": image.edits_version,
        "edits": image.edits,
        "cutout": reverse("editor:job-file", args=[result.job_id, "preview-cutout"]) + version,
        **(result.edited_info if edited else automatic_info(result)),
    }
