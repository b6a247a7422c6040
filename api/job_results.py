"""``/api/v1/jobs/<id>/result``: a finished job's result rendered with remove.bg's options,
exactly as the synchronous call renders (api.options, api.render): the options sent with the
submission, overridden by those of the query string (GET) or the body (POST, e.g. to send a
``bg_image_file`` or ``hints_file``).

Charging: the first download of a job charges the key for that download's size
(ApiJob.charge_once); later downloads of the same job are not charged again, whatever their
size. Each download counts as one image against the key's rate (a render costs CPU), and
is rendered in a heavy-operation slot (503 when none comes free in time).
"""

from __future__ import annotations

import base64
from decimal import Decimal
from http import HTTPStatus

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile
from django.http import HttpRequest, HttpResponse, JsonResponse

from api.errors import ApiError, bad_request
from api.images import picture, read_file
from api.limits import check_quota, rate_state, take
from api.models import ApiJob, credits_for
from api.options import RemoveBgForm
from api.render import CallRender, RenderedCall, render_call
from api.request_data import RequestData, read_request
from bgremover.engine.errors import EngineError
from editor.forms import ImageUploadForm
from editor.heavy import ServerBusy, heavy_operation
from editor.models import Job
from editor.quotas import RETRY_AFTER_S

# remove.bg's answer for a photo without a subject.
NO_FOREGROUND = "Could not identify foreground in image."
BUSY = "The server is busy with other images right now. Please try again shortly."


def _busy() -> ApiError:
    return ApiError(HTTPStatus.SERVICE_UNAVAILABLE, BUSY, "server_busy", RETRY_AFTER_S)


def _not_ready(job: Job) -> ApiError:
    if job.status == Job.Status.FAILED:
        return ApiError(
            HTTPStatus.CONFLICT, f"The job failed, so it has no result: {job.error}", "job_failed"
        )
    return ApiError(
        HTTPStatus.CONFLICT,
        f"The job is not finished yet ({job.status}, {job.percent} %): wait for it (its "
        "socket, its webhook, or its status URL), then ask again.",
        "job_not_finished",
        retry_after_s=2,
    )


def _request_data(request: HttpRequest, api_job: ApiJob) -> RequestData:
    """The download's options over those sent with the submission."""
    if request.method == "GET":
        given = RequestData({name: request.GET[name] for name in request.GET})
    else:
        given = read_request(request)
    return RequestData({**api_job.render_fields, **given.fields}, given.files)


def _background(data: RequestData) -> bytes | None:
    """A bg_image_* picture, checked as an upload is."""
    given = picture(data.files, data.fields, "bg_image")
    if given is None:
        return None
    name, content = given
    form = ImageUploadForm(files={"file": SimpleUploadedFile(name, content)})
    try:
        with heavy_operation(settings.HEAVY_WAIT_S):
            valid = form.is_valid()
    except ServerBusy:
        raise _busy() from None
    if not valid:
        rejection = form.first_error()
        raise ApiError(rejection.status, f"bg_image: {rejection.message}", "invalid_bg_image")
    return content


def _render(call: CallRender) -> RenderedCall:
    try:
        with heavy_operation(settings.HEAVY_WAIT_S):
            return render_call(call)
    except ServerBusy:
        raise _busy() from None
    except EngineError as exc:
        raise bad_request(str(exc)) from None


def _credits(value: Decimal) -> str:
    return f"{value.normalize():f}"


def result_response(request: HttpRequest, api_job: ApiJob) -> HttpResponse:
    """Render and answer ``api_job``'s result; raises ApiError for every refusal."""
    key, job = api_job.key, api_job.job
    if job.status != Job.Status.DONE:
        raise _not_ready(job)
    data = _request_data(request, api_job)
    form = RemoveBgForm(data)
    if not form.is_valid():
        raise bad_request(form.first_error())
    rate = take(key)
    try:
        result = job.image.latest_result()
        if result is None:  # its files went missing meanwhile (the job is failed by now)
            raise ApiError(HTTPStatus.CONFLICT, "The job's result is gone.", "job_failed")
        if api_job.charged_at is None:
            image = job.image
            check_quota(key, credits_for(form.output_pixels(image.width, image.height)))
        hints = data.files.get("hints_file")
        call = CallRender(
            result,
            form,
            _background(data),
            read_file("hints_file", hints) if hints is not None else None,
        )
        rendered = _render(call)
        top, left, width, height = rendered.foreground_box
        if width == 0 or height == 0:
            raise ApiError(HTTPStatus.BAD_REQUEST, NO_FOREGROUND, "unknown_foreground")
    except ApiError as refused:
        refused.headers = {**rate.headers(), **refused.headers}
        raise
    charge = credits_for(rendered.width * rendered.height)
    charged = charge if api_job.charge_once(charge) else Decimal(0)
    if "application/json" in request.headers.get("Accept", ""):
        response: HttpResponse = JsonResponse(
            {
                "data": {
                    "result_b64": base64.b64encode(rendered.content).decode(),
                    "foreground_top": top,
                    "foreground_left": left,
                    "foreground_width": width,
                    "foreground_height": height,
                }
            }
        )
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
        "X-Credits-Charged": _credits(charged),
        **rate_state(key).headers(),
    }
    for name, value in headers.items():
        response[name] = value
    return response
