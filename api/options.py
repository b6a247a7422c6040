"""remove.bg's request parameters, checked and turned into the engine's render options.

Values follow remove.bg's documentation (size, type, type_level, format, channels, roi, crop,
crop_margin, scale, position, bg_color, shadow_type, shadow_opacity, semitransparency), read
by the engine's own parsers (bgremover.engine.render_options), plus this server's extras:
``matting`` (auto, on, off), ``canvas`` (original, square, 4:5, 16:9, WxH) and the shadow's
``shadow_direction``, ``shadow_softness`` and ``shadow_distance``. Fields this server does not
know are ignored, as remove.bg ignores them.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django import forms
from django.http import HttpRequest

from api.errors import bad_request
from api.request_data import RequestData, read_request
from bgremover.engine import render_options as parse
from bgremover.engine.compose import Background
from bgremover.engine.errors import OptionsError
from bgremover.engine.layout import Canvas, plan_layout
from bgremover.engine.pipeline import RenderOptions
from editor.forms import FirstErrorMixin
from editor.models import Job

TYPES = frozenset(
    {"auto", "person", "product", "animal", "car", "car_interior", "car_part"}
    | {"transportation", "graphic", "other"}
)
TYPE_LEVELS = frozenset({"none", "1", "2", "latest"})
MATTING = frozenset(Job.Matting.values)
CONTENT_TYPES = {
    "png": "image/png",
    "jpeg": "image/jpeg",
    "webp": "image/webp",
    "zip": "application/zip",
}
WHITE = (255, 255, 255)


def _one_of(values: frozenset[str], what: str) -> Callable[[str], str]:
    def check(text: str) -> str:
        value = text.strip().lower()
        if value not in values:
            raise OptionsError(f"{what} {text!r} must be one of {', '.join(sorted(values))}")
        return value

    return check


def _format(text: str) -> str:
    """The format as asked (checked): "auto" is decided once the background is known."""
    parse.parse_format(text)
    return text.strip().lower()


# Each field: its default and the parser that reads it (raising OptionsError).
FIELDS: dict[str, tuple[str, Callable[[str], Any]]] = {
    "size": ("auto", parse.parse_size),
    "type": ("auto", _one_of(TYPES, "type")),
    "type_level": ("1", _one_of(TYPE_LEVELS, "type_level")),
    "format": ("auto", _format),
    "channels": ("rgba", parse.parse_channels),
    "roi": ("0% 0% 100% 100%", parse.parse_roi),
    "crop": ("false", lambda text: parse.parse_bool(text, what="crop")),
    "crop_margin": ("0", parse.parse_margin),
    "scale": ("original", parse.parse_scale),
    "position": ("original", parse.parse_position),
    "canvas": ("original", parse.parse_canvas),
    "bg_color": ("transparent", parse.parse_background_color),
    "semitransparency": ("true", lambda text: parse.parse_bool(text, what="semitransparency")),
    "add_shadow": ("false", lambda text: parse.parse_bool(text, what="add_shadow")),
    "matting": (Job.Matting.AUTO, _one_of(MATTING, "matting")),
}
SHADOW_FIELDS = tuple(f"shadow_{name}" for name in parse.SHADOW_SETTINGS)
MAX_VALUE_LENGTH = 100


class RemoveBgForm(FirstErrorMixin, forms.Form):
    """A call's parameters; ``cleaned_data`` holds each FIELDS value parsed, and "shadow"."""

    invalid_message = "The parameters are not valid."

    def __init__(self, data: RequestData) -> None:
        super().__init__(data.fields, data.files)
        self.request_data = data

    @classmethod
    def from_request(cls, request: HttpRequest) -> RemoveBgForm:
        """The request's parameters, checked; raises a 400 ApiError naming the first bad one."""
        form = cls(read_request(request))
        if not form.is_valid():
            raise bad_request(form.first_error())
        return form

    def clean(self) -> dict[str, Any]:
        fields = self.request_data.fields
        data: dict[str, Any] = {}
        for name, (default, reader) in FIELDS.items():
            text = fields.get(name) or default
            data[name] = self._read(name, text, reader)
        shadow_type = fields.get("shadow_type") or ("drop" if data["add_shadow"] else "none")
        # Each part read on its own (settings even when no shadow is asked for: a typo
        # should not pass), so a refusal names its field.
        data["shadow"] = parse.parse_shadow(
            shadow_type,
            **{
                name: fields[f"shadow_{name}"]
                for name in parse.SHADOW_SETTINGS
                if fields.get(f"shadow_{name}")
            },
            read=lambda name, reader, text: self._read(f"shadow_{name}", text, reader),
        )
        return data

    @staticmethod
    def _read(name: str, text: str, reader: Callable[[str], Any]) -> Any:
        if len(text) > MAX_VALUE_LENGTH:
            raise forms.ValidationError(f"{name} is too long.")
        try:
            return reader(text)
        except OptionsError as exc:
            message = str(exc)
            named = name.replace("_", " ") in message or name in message
            raise forms.ValidationError(message if named else f"{name}: {message}") from None

    # ---- What the view asks

    def render_options(self, background: Background | None = None) -> RenderOptions:
        """The engine's options; ``background``: a bg_image's, replacing bg_color."""
        data = self.cleaned_data
        background = background or data["bg_color"]
        file_format = self.file_format(background)
        if file_format == "jpeg":
            background = _flattened(background)
        return RenderOptions(
            background=background,
            crop_margin=data["crop_margin"] if data["crop"] else None,
            output=data["channels"],
            format=file_format,
            canvas=data["canvas"],
            scale=data["scale"],
            position=data["position"],
            roi=data["roi"],
            shadow=data["shadow"],
            semitransparency=data["semitransparency"],
            max_pixels=data["size"],
        )

    def file_format(self, background: Background) -> str:
        """The file format; remove.bg's "auto" is PNG where the result can be transparent,
        else JPEG; the alpha channel alone is always PNG."""
        if self.cleaned_data["channels"] == "mask":
            return "png"
        return parse.parse_format(self.cleaned_data["format"], transparent=not background.opaque)

    def output_pixels(self, width: int, height: int) -> int:
        """How many pixels the result has at most, for the quota check before the work: the
        layout of the whole photo on the canvas asked for (a crop only makes it smaller)."""
        canvas: Canvas = self.cleaned_data["canvas"]
        plan = plan_layout(width, height, None, canvas=canvas, max_pixels=self.cleaned_data["size"])
        return plan.width * plan.height

    def reported_type(self) -> str:
        """X-Type: what the caller said the photo shows (this server does not classify)."""
        kind = self.cleaned_data["type"]
        return "other" if kind == "auto" else kind


def _flattened(background: Background) -> Background:
    """JPEG has no transparency: what would be see-through lies on white, as remove.bg does."""
    if background.kind == "transparent":
        return Background(kind="color", color=WHITE)
    if background.kind == "color" and background.opacity < 255:
        share = background.opacity / 255
        color = tuple(round(c * share + 255 * (1 - share)) for c in background.color)
        return Background(kind="color", color=color)
    return background
