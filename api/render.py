"""Rendering a finished result the way an API call asks, and the answer remove.bg gives:
the engine's own render, with a hint map followed first and a background picture decoded
only here (it is checked when the call arrives, decoded when it is needed); the file (or
JSON with ``Accept: application/json``) with remove.bg's X- headers."""

from __future__ import annotations

import base64
from dataclasses import dataclass
from decimal import Decimal
from http import HTTPStatus

from django.conf import settings
from django.http import HttpRequest, HttpResponse, JsonResponse

from api.errors import ApiError, bad_request, busy
from api.limits import rate_state
from api.models import ApiKey
from api.options import CONTENT_TYPES, RemoveBgForm
from bgremover.engine.compose import Background
from bgremover.engine.errors import EngineError
from bgremover.engine.hint_maps import follow_hint_map, read_hint_map
from bgremover.engine.pipeline import render_with_info
from bgremover.engine.preprocess import decode_image
from editor.heavy import ServerBusy, heavy_operation
from editor.models import Result
from editor.results import load_cutout

# remove.bg's answer for a photo without a subject.
NO_FOREGROUND = "Could not identify foreground in image."


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


def gone() -> ApiError:
    """404 for an image deleted (or expired) while a call was answering."""
    return ApiError(HTTPStatus.NOT_FOUND, "The image was deleted meanwhile.", "not_found")


def render_in_slot(call: CallRender) -> RenderedCall:
    """``render_call`` in a heavy-operation slot; raises 503 when none comes free, 400 for
    a hint map that does not fit and for a result without a subject (remove.bg's answer)."""
    try:
        with heavy_operation(settings.HEAVY_WAIT_S):
            rendered = render_call(call)
    except ServerBusy:
        raise busy() from None
    except EngineError as exc:
        raise bad_request(str(exc)) from None
    except FileNotFoundError:  # its files were deleted (or expired) meanwhile
        raise gone() from None
    _, _, width, height = rendered.foreground_box
    if width == 0 or height == 0:
        raise ApiError(HTTPStatus.BAD_REQUEST, NO_FOREGROUND, "unknown_foreground")
    return rendered


def rendered_response(
    rendered: RenderedCall, form: RemoveBgForm, key: ApiKey, charged: Decimal, as_json: bool
) -> HttpResponse:
    """remove.bg's answer: the file, or ``{"data": {"result_b64", "foreground_*"}}``."""
    top, left, width, height = rendered.foreground_box
    if as_json:
        data = {
            "result_b64": base64.b64encode(rendered.content).decode(),
            "foreground_top": top,
            "foreground_left": left,
            "foreground_width": width,
            "foreground_height": height,
        }
        response: HttpResponse = JsonResponse({"data": data})
    else:
        response = HttpResponse(rendered.content, content_type=rendered.content_type)
    headers = {
        "X-Type": form.reported_type(),
        "X-Width": str(rendered.width),
        "X-Height": str(rendered.height),
        "X-Foreground-Top": str(top),
        "X-Foreground-Left": str(left),
        "X-Foreground-Width": str(width),
        "X-Foreground-Height": str(height),
        "X-Credits-Charged": f"{charged.normalize():f}",
        **rate_state(key).headers(),
    }
    for name, value in headers.items():
        response[name] = value
    return response


def wants_json(request: HttpRequest) -> bool:
    return "application/json" in request.headers.get("Accept", "")
