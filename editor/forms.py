"""Validation of what people send: uploads (type, size, dimensions), render choices and
the editor's touch-ups.

Limits come from settings (MAX_UPLOAD_BYTES, MAX_UPLOAD_PIXELS); checking goes through the
engine's decoder, whose error messages are written to be shown as they are.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from http import HTTPStatus

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.forms.utils import ErrorDict

from bgremover.engine.edits import Edit, parse_edits
from bgremover.engine.errors import ImageDecodeError, ImageTooLargeError, OptionsError
from bgremover.engine.preprocess import ImageInfo, probe_image
from editor.models import Image, Job
from editor.presets import PRESETS


def human_bytes(count: int) -> str:
    size = float(count)
    for unit in ("bytes", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "bytes" else f"{size:.1f} {unit}"
        size /= 1024
    raise AssertionError("unreachable")


def display_name(filename: str | None) -> str:
    """An uploaded file's name fit to show and to derive download names from: no folders,
    no control characters, at most 255 characters. It never becomes a storage path."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1]
    name = "".join(char for char in name if char.isprintable()).strip()
    return name[:255] or "image"


class FirstErrorMixin:
    """``first_error()`` for a form refused with one message: its first error (Django keeps
    them in field order), led by the field's name unless ``unnamed_fields`` is None or holds
    the field ("__all__": the errors of clean())."""

    invalid_message = "The form is not valid."  # when no message says why
    unnamed_fields: frozenset[str] | None = None
    errors: ErrorDict  # the form's

    def first_error(self) -> str:
        for field, errors in self.errors.items():
            message = str(errors[0])
            if self.unnamed_fields is None or field in self.unnamed_fields:
                return message
            return f"{field}: {message}"
        return self.invalid_message


@dataclass
class Rejection:
    """Why a file was refused, and the HTTP status that says so."""

    message: str
    status: HTTPStatus


class ImageUploadForm(forms.Form):
    """One image file, checked from its header and a bounded decode (the full decode happens
    in the job). After ``is_valid()``, ``info`` describes the picture and ``payload`` holds
    the bytes to store: the file without data trailing the image (e.g. a camera's appended
    video), so stored size follows the picture."""

    file = forms.FileField(
        error_messages={
            "required": "Choose an image to upload.",
            "empty": "The file is empty.",
        }
    )

    info: ImageInfo | None = None
    payload: bytes = b""
    rejection: Rejection | None = None

    def clean_file(self) -> UploadedFile:
        upload: UploadedFile = self.cleaned_data["file"]
        limit = settings.MAX_UPLOAD_BYTES
        if upload.size is not None and upload.size > limit:
            return self._reject(
                f"{upload.name} is {human_bytes(upload.size)}; the limit is {human_bytes(limit)}.",
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
            )
        upload.seek(0)
        data = upload.read(limit + 1)
        upload.seek(0)
        try:
            self.info = probe_image(data, max_pixels=settings.MAX_UPLOAD_PIXELS, max_bytes=limit)
        except ImageTooLargeError as exc:
            return self._reject(f"{upload.name}: {exc}", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
        except ImageDecodeError as exc:
            return self._reject(f"{upload.name}: {exc}", HTTPStatus.UNSUPPORTED_MEDIA_TYPE)
        end = self.info.image_end
        self.payload = data[:end] if end is not None and end < len(data) else data
        return upload

    def storage_name(self, stem: str) -> str:
        """A file name for storage: our own stem and the decoded format's extension (the
        uploaded name is never used for paths)."""
        assert self.info is not None, "call is_valid() first"
        extension = {"JPEG": "jpg", "MPO": "jpg", "TIFF": "tif"}.get(self.info.format)
        return f"{stem}.{extension or self.info.format.lower()}"

    def _reject(self, message: str, status: HTTPStatus) -> UploadedFile:
        self.rejection = Rejection(message, status)
        raise forms.ValidationError(message)

    def first_error(self) -> Rejection:
        if self.rejection is not None:
            return self.rejection
        for errors in self.errors.values():
            return Rejection(str(errors[0]), HTTPStatus.BAD_REQUEST)
        return Rejection("The upload is not valid.", HTTPStatus.BAD_REQUEST)


class BackgroundUploadForm(ImageUploadForm):
    """A custom background picture for the editor: same checks and limits as any upload."""

    file = forms.FileField(
        error_messages={
            "required": "Choose a background picture.",
            "empty": "The file is empty.",
        }
    )


class RerunForm(forms.Form):
    matting = forms.ChoiceField(choices=Job.Matting.choices, initial=Job.Matting.AUTO)


# Whole value: RegexField only searches, so "zz#123456" (or "#123456" and 100 kB more) passed.
_HEX = re.compile(r"\A#[0-9a-fA-F]{6}\Z")
# A custom canvas's largest side: the engine holds any canvas to 50 MP (layout.py) anyway.
MAX_CANVAS_SIDE = 10_000


def _whole_number(label: str, low: int, high: int, unit: str = "") -> forms.IntegerField:
    """An optional whole number whose every refusal names the field and its range."""
    message = f"{label} must be a whole number from {low} to {high}{unit}."
    return forms.IntegerField(
        label=label,
        min_value=low,
        max_value=high,
        required=False,
        # Django %-formats the range messages (with the limit) but not "invalid".
        error_messages={
            "invalid": message,
            "min_value": message.replace("%", "%%"),
            "max_value": message.replace("%", "%%"),
        },
    )


class RenderForm(FirstErrorMixin, forms.Form):
    """A download request: which background, crop, output and file format."""

    invalid_message = "The download options are not valid."

    BACKGROUNDS = [
        ("transparent", "Transparent"),
        ("color", "Colour"),
        ("preset", "Preset photo"),
        ("custom", "Your background"),
        ("blur", "Blurred original"),
    ]
    FORMATS = [("png", "PNG"), ("webp", "WebP"), ("jpeg", "JPEG")]
    OUTPUTS = [("cutout", "Cut-out"), ("mask", "Alpha mask")]

    background = forms.ChoiceField(choices=BACKGROUNDS, required=False)
    color = forms.RegexField(
        regex=_HEX,
        required=False,
        error_messages={
            "invalid": "Colour must look like #1e90ff.",
        },
    )
    preset = forms.ChoiceField(
        choices=[(key, p.label) for key, p in PRESETS.items()], required=False
    )
    blur = forms.IntegerField(min_value=1, max_value=100, required=False)
    crop = forms.BooleanField(required=False)
    margin = forms.IntegerField(min_value=0, max_value=50, required=False)
    format = forms.ChoiceField(choices=FORMATS, required=False)
    output = forms.ChoiceField(choices=OUTPUTS, required=False)
    # Canvas and shadow (issue 14); results.render_options_from_choice reads them.
    CANVASES = [
        ("original", "Original size"),
        ("square", "Square (1:1)"),
        ("4:5", "Portrait (4:5)"),
        ("16:9", "Wide (16:9)"),
        ("custom", "Custom pixels"),
    ]
    canvas = forms.ChoiceField(
        choices=CANVASES,
        required=False,
        label="Canvas",
        error_messages={"invalid_choice": "Canvas must be original, square, 4:5, 16:9 or custom."},
    )
    canvas_width = _whole_number("Canvas width", 1, MAX_CANVAS_SIDE, " px")
    canvas_height = _whole_number("Canvas height", 1, MAX_CANVAS_SIDE, " px")
    scale = _whole_number("Subject size", 10, 100, " %")  # empty: the subject's own size
    position_x = _whole_number("Horizontal position", 0, 100, " %")  # empty: centred
    position_y = _whole_number("Vertical position", 0, 100, " %")
    shadow = forms.BooleanField(required=False, label="Shadow")
    shadow_direction = _whole_number("Shadow direction", 0, 359, " degrees")
    shadow_distance = _whole_number("Shadow distance", 0, 50, " %")
    shadow_softness = _whole_number("Shadow softness", 0, 50, " %")
    shadow_opacity = _whole_number("Shadow opacity", 0, 100, " %")

    SHADOW_DEFAULTS = {"direction": 90, "distance": 2, "softness": 3, "opacity": 50}

    def clean(self) -> dict[str, object]:
        data = super().clean()
        data["canvas"] = data.get("canvas") or "original"
        if data["canvas"] == "custom" and (
            data.get("canvas_width") is None or data.get("canvas_height") is None
        ):
            raise forms.ValidationError("Give the custom canvas's width and height in pixels.")
        if (data.get("position_x") is None) != (data.get("position_y") is None):
            raise forms.ValidationError("Give both positions, horizontal and vertical, or neither.")
        for name, default in self.SHADOW_DEFAULTS.items():
            if data.get(f"shadow_{name}") is None:
                data[f"shadow_{name}"] = default
        data["background"] = data.get("background") or "transparent"
        data["format"] = data.get("format") or "png"
        data["output"] = data.get("output") or "cutout"
        data["margin"] = 5 if data.get("margin") is None else data["margin"]
        data["blur"] = data.get("blur") or 50
        background = data["background"]
        if background == "color" and not data.get("color"):
            raise forms.ValidationError("Pick a colour for the background.")
        if background == "preset" and not data.get("preset"):
            raise forms.ValidationError("Pick one of the preset backgrounds.")
        if data["output"] == "cutout" and background == "transparent" and data["format"] == "jpeg":
            raise forms.ValidationError(
                "JPEG cannot store transparency: choose PNG or WebP, or pick a background."
            )
        return data


class EditsForm(FirstErrorMixin, forms.Form):
    """A save of the editor's touch-ups, sent as JSON ``{"version": n, "edits": [...]}``:
    ``version`` is the Image.edits_version the editor started from; ``edits`` the whole list
    (bgremover.engine.edits), checked against the image's size and EditLimits."""

    version = forms.IntegerField(min_value=0)
    edits = forms.Field(required=False)  # any JSON value, checked by clean_edits

    invalid_message = "The edits are not valid."
    unnamed_fields = frozenset({"edits"})

    def __init__(self, body: bytes, image: Image) -> None:
        try:
            data = json.loads(body)
        # ValueError: also a number of over 4300 digits; RecursionError: deep nesting.
        except (ValueError, RecursionError):
            data = None
        super().__init__(data if isinstance(data, dict) else {})
        self.readable = isinstance(data, dict)
        self.image = image

    def clean_edits(self) -> tuple[Edit, ...]:
        try:
            return parse_edits(self.cleaned_data["edits"], self.image.width, self.image.height)
        except OptionsError as exc:
            raise forms.ValidationError(str(exc)) from exc

    def first_error(self) -> str:
        if not self.readable:
            return 'Send the edits as JSON: {"version": 0, "edits": [...]}.'
        return super().first_error()
