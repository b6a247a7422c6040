"""Batch downloads: several of an owner's images rendered with one set of settings, sent as
one ZIP that is built while it is sent (editor.zipstream).

``BatchSelectionForm`` checks which images were asked for (the owner's own, at most
settings.ZIP_MAX_IMAGES); ``BatchSettingsForm`` is the editor's RenderForm with a panel's
labels, so every field RenderForm gains applies here too. ``BatchZip`` renders one image at a
time, each with ``results.render_download`` (the editor's own download, edits replayed) in a
heavy-operation slot, and hands out each entry's bytes as soon as it is written. An image
deleted or failing meanwhile is left out and listed in the archive's ``errors.txt``.
"""

from __future__ import annotations

import re
import uuid
from collections import deque
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

from django import forms
from django.conf import settings

from bgremover.engine.errors import EngineError
from editor.forms import FirstErrorMixin, RenderForm
from editor.heavy import ServerBusy, heavy_operation
from editor.models import Image
from editor.off_thread import off_thread
from editor.results import render_download
from editor.zipstream import ZipStream

# The archive's note on images left out (reserved: no image entry takes this name).
NOTE_NAME = "errors.txt"
# A batch waits longer than a single download for a slot: it holds one at a time, and
# giving up means an image missing from the archive, not a retry by hand.
SLOT_WAIT_S = 120
_UNSAFE_IN_ENTRY_NAMES = re.compile(r'[<>:"/\\|?*;\x00-\x1f\x7f]')


class BatchSelectionForm(FirstErrorMixin, forms.Form):
    """The images of a batch: ``image`` ids (repeated), all the requesting owner's."""

    invalid_message = "The selection is not valid."

    use_saved = forms.BooleanField(required=False)

    def __init__(self, data: Any, owner: str | None) -> None:
        super().__init__(data)
        self.owner = owner
        self.images: list[Image] = []

    def clean(self) -> dict[str, Any]:
        data = super().clean()
        raw = [value.strip() for value in self.data.getlist("image")]
        if not raw:
            raise forms.ValidationError("Select at least one image.")
        ids: list[uuid.UUID] = []
        for value in raw:
            try:
                ids.append(uuid.UUID(value))
            except ValueError:
                raise forms.ValidationError(f"{value[:40]!r} is not an image id.") from None
        ids = list(dict.fromkeys(ids))  # each image once, in the order chosen
        most = settings.ZIP_MAX_IMAGES
        if len(ids) > most:
            raise forms.ValidationError(
                f"A ZIP holds at most {most} images; {len(ids)} were selected."
            )
        # Someone else's image reads exactly like one that does not exist.
        found = (
            {image.pk: image for image in Image.objects.filter(pk__in=ids, owner=self.owner)}
            if self.owner is not None
            else {}
        )
        missing = [str(image_id) for image_id in ids if image_id not in found]
        if missing:
            raise forms.ValidationError(
                f"{len(missing)} of the selected images do not exist (any more) in this "
                f"browser: {', '.join(missing[:5])}{'…' if len(missing) > 5 else ''}. "
                "Reload the gallery and select again."
            )
        self.images = [found[image_id] for image_id in ids]
        return data


# Labels for the batch panel (RenderForm's own names are the field names).
_LABELS = {
    "background": "Background",
    "color": "Colour",
    "preset": "Preset photo",
    "blur": "Blur strength (1–100)",
    "crop": "Crop to the subject",
    "margin": "Margin around the subject (%)",
    "output": "Output",
    "format": "Format",
}
_INITIAL = {"color": "#ffffff", "blur": 50, "margin": 5}
# What an empty number field means, shown in it.
_PLACEHOLDERS = {
    "canvas_width": "e.g. 1080",
    "canvas_height": "e.g. 1080",
    "scale": "the subject's own size",
    "position_x": "centred",
    "position_y": "centred",
}


class BatchSettingsForm(RenderForm):
    """RenderForm as a settings panel for several images (the gallery's ZIP, the upload
    page's batch settings): the same fields and checks, labels that read well in a panel.
    "Your background" is each image's own uploaded background here."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        initial = {
            **_INITIAL,
            **{f"shadow_{k}": v for k, v in RenderForm.SHADOW_DEFAULTS.items()},
        }
        for name, field in self.fields.items():
            field.label = _LABELS.get(name, field.label)
            if name in initial:
                field.initial = initial[name]
            if name in _PLACEHOLDERS:
                field.widget.attrs["placeholder"] = _PLACEHOLDERS[name]
        background = self.fields["background"]
        background.choices = [
            (key, "Each image's own background" if key == "custom" else label)
            for key, label in background.choices
        ]
        self.fields["color"].widget = forms.TextInput(attrs={"type": "color"})

    def settings_as_sent(self) -> dict[str, str]:
        """The fields as sent (without prefix), for Image.render_settings: checked again by
        RenderForm when used, so fields added later never meet stale cleaned data."""
        sent = {}
        for name in self.fields:
            key = self.add_prefix(name)
            if key in self.data and self.data[key] != "":
                sent[name] = str(self.data[key])
        return sent

    def was_sent(self) -> bool:
        """Whether any of its fields came with the request (the upload page sends them only
        when its batch settings are switched on)."""
        return any(self.add_prefix(name) in self.data for name in self.fields)


def saved_choice(image: Image) -> dict[str, Any] | None:
    """The cleaned RenderForm data of the settings chosen at upload, or None when the image
    has none (or they no longer pass RenderForm's checks)."""
    if not image.render_settings:
        return None
    form = RenderForm(image.render_settings)
    return form.cleaned_data if form.is_valid() else None


@dataclass(frozen=True)
class Planned:
    image_id: uuid.UUID
    name: str  # the uploaded file's name, for the note on images left out


class BatchZip:
    """The ZIP of ``images`` rendered with ``choice`` (or, with ``use_saved``, each image's
    settings from upload where it has them), produced one entry per ``next_part`` call."""

    def __init__(
        self, owner: str, images: list[Image], choice: dict[str, Any], use_saved: bool
    ) -> None:
        self.owner = owner
        self.choice = choice
        self.use_saved = use_saved
        self.pending = deque(Planned(image.pk, image.original_name) for image in images)
        self.total = len(self.pending)
        self.names = {NOTE_NAME}
        self.skipped: list[tuple[str, str]] = []
        self.archive = ZipStream()
        self.finished = False

    def filename(self) -> str:
        return f"bgremover-{self.total}-image{'s' if self.total != 1 else ''}.zip"

    def next_part(self) -> bytes | None:
        """The next image's entry; then the note (if any) and the end of the archive; then
        None. Each call holds at most one rendered image in memory."""
        while self.pending:
            part = self._entry(self.pending.popleft())
            if part is not None:
                return part
        if self.finished:
            return None
        self.finished = True
        note = self.archive.add(NOTE_NAME, self._note(), compress=True) if self.skipped else b""
        return note + self.archive.finish()

    def parts(self) -> Iterator[bytes]:
        """Every part, for a synchronous (WSGI) server."""
        return iter(self.next_part, None)

    async def aparts(self) -> AsyncIterator[bytes]:
        """Every part, each rendered in a worker thread, for an ASGI server: Django would
        read a synchronous iterator whole before sending any of it."""
        step = off_thread(self.next_part)
        while (part := await step()) is not None:
            yield part

    def _entry(self, planned: Planned) -> bytes | None:
        image = Image.objects.filter(pk=planned.image_id, owner=self.owner).first()
        if image is None:
            return self._skip(planned, "it was deleted before it could be added")
        result = image.latest_result()
        if result is None:
            return self._skip(planned, "it has no finished result")
        choice = (self.use_saved and saved_choice(image)) or self.choice
        if choice["background"] == "custom" and not image.background:
            return self._skip(planned, "it has no background of its own (upload one in the editor)")
        try:
            with heavy_operation(max(settings.HEAVY_WAIT_S, SLOT_WAIT_S)):
                rendered = render_download(image, result, choice)
        except ServerBusy:
            return self._skip(planned, "the server stayed busy with other images")
        except (EngineError, LookupError, OSError, ValueError) as exc:
            # OSError: its files were deleted while it was rendered.
            return self._skip(planned, f"it could not be rendered ({exc})")
        return self.archive.add(self._unique(rendered.filename), rendered.content)

    def _skip(self, planned: Planned, reason: str) -> None:
        self.skipped.append((planned.name, reason))
        return None

    def _unique(self, filename: str) -> str:
        """``filename`` made safe for an entry (no folders) and unique in the archive, also
        on file systems that ignore case: photo-cutout.png, photo-cutout-2.png, …"""
        safe = _UNSAFE_IN_ENTRY_NAMES.sub("_", filename).strip(" .") or "image"
        stem, dot, extension = safe.rpartition(".")
        if not dot:
            stem, extension = safe, ""
        candidate, number = safe, 2
        while candidate.lower() in self.names:
            candidate = f"{stem}-{number}{dot}{extension}"
            number += 1
        self.names.add(candidate.lower())
        return candidate

    def _note(self) -> bytes:
        lines = [
            f"{len(self.skipped)} of the {self.total} selected images are not in this ZIP:",
            "",
            *(f"- {name}: {reason}." for name, reason in self.skipped),
            "",
        ]
        return "\n".join(lines).encode()
