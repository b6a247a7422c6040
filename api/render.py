"""Rendering a finished result the way an API call asks: the engine's own render, with a
hint map followed first and a background picture decoded only here (it is checked when
the call arrives, decoded when it is needed)."""

from __future__ import annotations

from dataclasses import dataclass

from django.conf import settings

from api.options import CONTENT_TYPES, RemoveBgForm
from bgremover.engine.compose import Background
from bgremover.engine.hint_maps import follow_hint_map, read_hint_map
from bgremover.engine.pipeline import render_with_info
from bgremover.engine.preprocess import decode_image
from editor.models import Result
from editor.results import load_cutout


@dataclass(frozen=True)
class CallRender:
    """What one call renders: a finished result, the call's options, and its pictures."""

    result: Result
    form: RemoveBgForm
    background: bytes | None = None  # bg_image_*, checked as an upload
    hints: bytes | None = None  # hints_file: an 8-bit grey PNG the photo's size


@dataclass(frozen=True)
class RenderedCall:
    content: bytes
    content_type: str
    width: int
    height: int
    foreground_box: tuple[int, int, int, int]  # top, left, width, height


def render_call(call: CallRender) -> RenderedCall:
    """Render ``call``; raises OptionsError for a hint map that does not fit the photo."""
    background = None
    if call.background is not None:
        decoded = decode_image(call.background, max_pixels=settings.MAX_UPLOAD_PIXELS)
        background = Background(kind="image", image=decoded.rgb)
    options = call.form.render_options(background)
    cutout = load_cutout(call.result, with_original=call.hints is not None)
    if call.hints is not None:
        height, width = cutout.alpha.shape
        hints = read_hint_map(call.hints, "hints_file", (width, height))
        cutout = follow_hint_map(cutout, hints, "hints_file")
    rendered = render_with_info(cutout, options)
    return RenderedCall(
        rendered.content,
        CONTENT_TYPES[options.format],
        rendered.width,
        rendered.height,
        rendered.foreground_box,
    )
