"""remove.bg's API on this server: ``POST /api/v1.0/removebg`` and ``GET /api/v1.0/account``.

The call goes the browser's way: the image is stored as an upload of the key's owner and its
job queued (so it shares the queue, the limits and the workers), the view waits for the job
without holding a thread (api.waiting), renders the result with the call's options, and
deletes the image again as the answer goes out, whatever happened: a synchronous call keeps
nothing.
"""

from __future__ import annotations

import asyncio
import uuid
from dataclasses import dataclass
from http import HTTPStatus

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.views.decorators.csrf import csrf_exempt

from api.auth import authenticate
from api.errors import ApiError, bad_request, busy, method_not_allowed
from api.images import check_picture, picture, read_file
from api.limits import RateState, check_quota, rate_state, take
from api.models import ApiKey, credits_for
from api.options import RemoveBgForm
from api.render import CallRender, gone, render_in_slot, rendered_response, wants_json
from api.waiting import wait_for_job
from bgremover.engine.errors import OptionsError
from bgremover.engine.hint_maps import check_hint_map
from editor.forms import ImageUploadForm
from editor.models import Image, Job
from editor.off_thread import off_thread
from editor.quotas import OverQuota, admit_upload
from editor.results import delete_image
from editor.tasks import UNEXPECTED_FAILURE, WORKER_DIED
from editor.uploads import store_upload

# The call's own busy answer: its job did not end within API_SYNC_WAIT_S.
NOT_IN_TIME = "The server is busy: the image was not processed in time. Please try again later."


@dataclass
class Submission:
    key: ApiKey
    job_id: uuid.UUID
    image_id: uuid.UUID
    form: RemoveBgForm
    rate: RateState
    background: bytes | None
    hints: bytes | None


def admit(key: ApiKey, upload: ImageUploadForm, name: str, matting: str) -> Job:
    info = upload.info
    assert info is not None
    try:
        with transaction.atomic():
            admit_upload(key.owner, len(upload.payload), info.width * info.height)
            return store_upload(upload, name, key.owner, matting)
    except OverQuota as refused:
        code = {429: "rate_limit_exceeded", 507: "storage_full"}.get(refused.status, "server_busy")
        raise ApiError(refused.status, refused.message, code, refused.retry_after_s) from None


def submit(request: HttpRequest) -> Submission:
    """Everything before the wait: key, limits, parameters, the image, its job."""
    key = authenticate(request)
    form = RemoveBgForm.from_request(request)
    rate = take(key)
    data = form.request_data
    source = picture(data.files, data.fields, "image")
    if source is None:
        raise bad_request(
            "No image given: send image_file, image_file_b64 or image_url.", "missing_source"
        )
    name, content = source
    upload = check_picture((name, content))
    info = upload.info
    assert info is not None
    background = picture(data.files, data.fields, "bg_image")
    if background is not None:
        check_picture(background, "bg_image")
    hints = data.files.get("hints_file")
    hint_bytes = read_file("hints_file", hints) if hints is not None else None
    if hint_bytes is not None:  # refused now, not after the job ran
        try:
            check_hint_map(hint_bytes, "hints_file", (info.width, info.height))
        except OptionsError as exc:
            raise bad_request(str(exc)) from None
    check_quota(key, credits_for(form.output_pixels(info.width, info.height)))
    job = admit(key, upload, name, form.cleaned_data["matting"])
    return Submission(
        key,
        job.id,
        job.image_id,
        form,
        rate,
        background[1] if background is not None else None,
        hint_bytes,
    )


def prepare(submission: Submission) -> CallRender:
    """The finished job's result and what rendering it needs (database work, in the request's
    own thread); raises when the job failed."""
    job = Job.objects.select_related("image").filter(pk=submission.job_id).first()
    if job is None:
        raise gone()
    if job.status == Job.Status.FAILED:
        ours = job.error in (UNEXPECTED_FAILURE, WORKER_DIED)
        status = HTTPStatus.INTERNAL_SERVER_ERROR if ours else HTTPStatus.BAD_REQUEST
        raise ApiError(status, job.error, "processing_failed")
    result = job.image.latest_result()
    if result is None:
        raise gone()
    return CallRender(result, submission.form, submission.background, submission.hints)


def respond(submission: Submission, call: CallRender, as_json: bool) -> HttpResponse:
    rendered = render_in_slot(call)
    charge = credits_for(rendered.width * rendered.height)
    submission.key.charge(charge)
    return rendered_response(rendered, submission.form, submission.key, charge, as_json)


# Deletions started after an answer, held until done (the event loop keeps weak references).
_DISCARDING: set[asyncio.Task[None]] = set()


def discard_later(submission: Submission) -> None:
    """Delete the call's image once the answer is on its way: the caller does not wait for
    the files to go (a crash in between leaves them to the retention purge)."""
    task = asyncio.ensure_future(off_thread(discard)(submission))
    _DISCARDING.add(task)
    task.add_done_callback(_DISCARDING.discard)


def discard(submission: Submission) -> None:
    image = Image.objects.filter(pk=submission.image_id).first()
    if image is not None:
        delete_image(image)


@csrf_exempt
async def removebg(request: HttpRequest) -> HttpResponse:
    if request.method != "POST":
        return method_not_allowed("POST").response()
    try:
        submission = await sync_to_async(submit)(request)
    except ApiError as refused:
        return refused.response()
    try:
        finished = await wait_for_job(submission.job_id, settings.API_SYNC_WAIT_S)
        if finished is None:
            raise gone()
        if not finished:
            raise busy(NOT_IN_TIME)
        call = await sync_to_async(prepare)(submission)
        return await sync_to_async(respond)(submission, call, wants_json(request))
    except ApiError as refused:
        refused.headers = {**submission.rate.headers(), **refused.headers}
        return refused.response()
    finally:
        discard_later(submission)


@csrf_exempt  # key-authenticated and read-only: another method gets 405, not a CSRF page
def account(request: HttpRequest) -> JsonResponse:
    """remove.bg's account answer: credits left this month (the quota; "total" is what is
    left, as remove.bg reports it), and this server's own figures under "bgremover"."""
    if request.method not in ("GET", "HEAD"):
        return method_not_allowed("GET").response()
    try:
        key = authenticate(request)
    except ApiError as refused:
        return refused.response()
    usage = key.usage()
    left = key.credits_left()
    total = float(left) if left is not None else None
    response = JsonResponse(
        {
            "data": {
                "attributes": {
                    "credits": {
                        "total": total,
                        "subscription": total,
                        "payg": 0,
                        "enterprise": 0,
                    },
                    "api": {"free_calls": 0, "sizes": "all"},
                    "bgremover": {
                        "key": key.prefix,
                        "name": key.name,
                        "month": usage.month.strftime("%Y-%m"),
                        "credits_used": float(usage.credits),
                        "images": usage.images,
                        "monthly_quota": float(key.monthly_quota)
                        if key.monthly_quota is not None
                        else None,
                    },
                }
            }
        }
    )
    for name, value in rate_state(key).headers().items():
        response[name] = value
    return response
