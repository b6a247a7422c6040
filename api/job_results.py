"""``/api/v1/jobs/<id>/result``: a finished job's result rendered with remove.bg's options,
exactly as the synchronous call renders (api.options, api.render): the options sent with the
submission, overridden by those of the query string (GET) or the body (POST, e.g. to send a
``bg_image_file`` or ``hints_file``).

Charging: a job costs what its largest download costs: the first download charges for its
size, a later larger one the difference (ApiJob.charge_up_to), others nothing. Each
download counts as one image against the key's rate (a render costs CPU), and is rendered
in a heavy-operation slot (503 when none comes free in time).
"""

from __future__ import annotations

from http import HTTPStatus

from django.http import HttpRequest, HttpResponse

from api.errors import ApiError, bad_request
from api.images import check_picture, picture, read_file
from api.limits import check_quota, take
from api.models import ApiJob, credits_for
from api.options import RemoveBgForm
from api.render import CallRender, gone, render_in_slot, rendered_response, wants_json
from api.request_data import RequestData, read_request
from editor.models import Job


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
    check_picture(given, "bg_image")
    return given[1]


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
        image = job.image
        expected = credits_for(form.output_pixels(image.width, image.height))
        check_quota(key, expected - (api_job.credits_charged or 0))
        hints = data.files.get("hints_file")
        call = CallRender(
            result,
            form,
            _background(data),
            read_file("hints_file", hints) if hints is not None else None,
        )
        rendered = render_in_slot(call)
    except ApiError as refused:
        refused.headers = {**rate.headers(), **refused.headers}
        raise
    try:
        charged = api_job.charge_up_to(credits_for(rendered.width * rendered.height))
    except ApiJob.DoesNotExist:  # deleted (or purged) while it rendered
        raise gone() from None
    return rendered_response(rendered, form, key, charged, wants_json(request))
