"""The editor's touch-ups: one endpoint that saves an image's whole edit list and answers
with what the editor shows next (thin: checks in forms.EditsForm, work in editor.edits)."""

from __future__ import annotations

import uuid
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import RequestDataTooBig
from django.http import HttpRequest, JsonResponse
from django.views.decorators.http import require_POST

from bgremover.engine.errors import EngineError
from editor.edits import EditConflict, edit_state, save_edits
from editor.forms import EditsForm
from editor.heavy import ServerBusy, busy_response, heavy_operation
from editor.models import JobGone
from editor.ownership import owned_image
from editor.ratelimit import rate_limited
from editor.views import json_error

CONFLICT = (
    "These edits changed in another window since this page loaded: reload to continue from "
    "the latest ones."
)
GONE = "This image was deleted meanwhile; nothing was saved."


@require_POST
@rate_limited("edits")
def save(request: HttpRequest, image_id: uuid.UUID) -> JsonResponse:
    image = owned_image(request, image_id)
    result = image.latest_result()
    if result is None:
        return json_error("This image has no finished result to edit yet.", HTTPStatus.CONFLICT)
    try:
        form = EditsForm(request.body, image)
    except RequestDataTooBig:
        return json_error("Too many edits in one request.", HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    if not form.is_valid():
        return json_error(form.first_error(), HTTPStatus.BAD_REQUEST)
    try:
        with heavy_operation(settings.HEAVY_WAIT_S):
            save_edits(image, result, form.cleaned_data["edits"], form.cleaned_data["version"])
            state = edit_state(image, result)
    except ServerBusy:
        return busy_response()
    except EditConflict:
        image.refresh_from_db()
        return json_error(CONFLICT, HTTPStatus.CONFLICT, version=image.edits_version)
    except JobGone:
        return json_error(GONE, HTTPStatus.NOT_FOUND)
    except EngineError as exc:
        return json_error(str(exc), HTTPStatus.BAD_REQUEST)
    return JsonResponse(state)
