"""Thin views: check ownership, validate with forms, hand work to tasks and results."""

from __future__ import annotations

import contextlib
import json
import uuid
from http import HTTPStatus

from django.conf import settings
from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.paginator import Paginator
from django.db import transaction
from django.db.models.fields.files import FieldFile
from django.http import (
    FileResponse,
    Http404,
    HttpRequest,
    HttpResponse,
    HttpResponseRedirect,
    JsonResponse,
)
from django.http.multipartparser import MultiPartParserError
from django.shortcuts import render
from django.urls import reverse
from django.utils.http import content_disposition_header
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from bgremover.engine.errors import EngineError
from editor.batch import BatchSettingsForm
from editor.edits import edit_state, refresh_edited
from editor.forms import (
    BackgroundUploadForm,
    ImageUploadForm,
    RenderForm,
    RerunForm,
    display_name,
    human_bytes,
)
from editor.heavy import ServerBusy, busy_response, heavy_operation
from editor.models import Image, Job, Result
from editor.ownership import current_owner, owned_image, owned_images, owned_job, request_owner
from editor.presets import PRESETS
from editor.progress import job_state
from editor.quotas import admit_background, admit_rerun, admit_upload, within_quotas
from editor.ratelimit import limit, rate_limited
from editor.refusals import count_refusal, upload_rejection_reason
from editor.request_limits import max_request_bytes, too_large_message
from editor.results import delete_image, render_download, replace_background
from editor.tasks import enqueue_job
from editor.uploads import store_upload

# A request body Django cannot parse as a form (broken multipart, too many parts or fields).
UNREADABLE_REQUEST = (MultiPartParserError, RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent)
MALFORMED_UPLOAD = (
    "The upload could not be read: send one image as multipart/form-data in a field named file."
)
# How many recent uploads the upload page lists (so a reload picks running jobs back up).
RECENT_ON_UPLOAD_PAGE = 8


def json_error(message: str, status: int = HTTPStatus.BAD_REQUEST, **extra: object) -> JsonResponse:
    """The pages' error answer: ``{"error": message, …extra}`` (the scripts show the message)."""
    return JsonResponse({"error": message, **extra}, status=status)


def _limits() -> dict[str, object]:
    return {
        "max_bytes": settings.MAX_UPLOAD_BYTES,
        "max_bytes_label": human_bytes(settings.MAX_UPLOAD_BYTES),
        "max_megapixels": settings.MAX_UPLOAD_PIXELS // 1_000_000,
    }


def _card(image: Image) -> dict[str, object]:
    job = image.latest_job()
    state = job_state(job) if job else None
    return {
        "image": image,
        "job": job,
        "state": state,
        "state_json": json.dumps(state),
        "result": image.latest_result(),
    }


@require_GET
def upload_page(request: HttpRequest) -> HttpResponse:
    recent = [_card(image) for image in owned_images(request).with_latest()[:RECENT_ON_UPLOAD_PAGE]]
    has_owner = current_owner(request) is not None  # else upload.js sends one file first
    context = {"recent": recent, "has_owner": has_owner, **_limits()}
    context["batch_form"] = BatchSettingsForm(prefix="settings")
    return render(request, "editor/upload.html", context)


@require_POST
@rate_limited("uploads")
@within_quotas
def upload(request: HttpRequest) -> JsonResponse:
    """One image per request, so each file of a multi-file drop succeeds or fails alone."""
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > max_request_bytes():
        count_refusal("too_large")
        return json_error(too_large_message(), HTTPStatus.REQUEST_ENTITY_TOO_LARGE)
    try:
        form = ImageUploadForm(request.POST, request.FILES)
        # Optional settings for a batch (the upload page's panel), kept with the image.
        batch = BatchSettingsForm(request.POST, prefix="settings")
        if batch.was_sent() and not batch.is_valid():
            return json_error(f"Batch settings: {batch.first_error()}", HTTPStatus.BAD_REQUEST)
        with heavy_operation(settings.HEAVY_WAIT_S):
            valid = form.is_valid()
    except UNREADABLE_REQUEST:
        count_refusal("bad_file")
        return json_error(MALFORMED_UPLOAD, HTTPStatus.BAD_REQUEST)
    except ServerBusy:
        return busy_response()
    if not valid:
        rejection = form.first_error()
        count_refusal(upload_rejection_reason(rejection.status))
        return json_error(rejection.message, rejection.status)
    upload_file, info = form.cleaned_data["file"], form.info
    assert info is not None  # set by a successful clean_file
    with transaction.atomic():
        # Admission counts no owner that does not exist yet: a refused upload creates none.
        admit_upload(current_owner(request), len(form.payload), info.width * info.height)
        job = store_upload(
            form,
            display_name(upload_file.name),
            request_owner(request),
            render_settings=batch.settings_as_sent() if batch.was_sent() else None,
        )
    return JsonResponse(
        {"image": str(job.image_id), "notes": list(info.notes), **job_state(job)},
        status=HTTPStatus.CREATED,
    )


@require_GET
def gallery(request: HttpRequest) -> HttpResponse:
    images = owned_images(request).with_latest()
    page = Paginator(images, settings.GALLERY_PAGE_SIZE).get_page(request.GET.get("page"))
    cards = [_card(image) for image in page]
    context = {"cards": cards, "page": page, "batch_form": BatchSettingsForm()}
    return render(request, "editor/gallery.html", {**context, "zip_max": settings.ZIP_MAX_IMAGES})


# Solid colour swatches offered in the editor (any other colour via the colour input).
SWATCHES = [
    ("#ffffff", "White"),
    ("#000000", "Black"),
    ("#e5e7eb", "Light grey"),
    ("#fde68a", "Butter yellow"),
    ("#fca5a5", "Coral"),
    ("#93c5fd", "Sky blue"),
    ("#86efac", "Mint green"),
    ("#c4b5fd", "Lavender"),
]


@require_GET
def image_page(request: HttpRequest, image_id: uuid.UUID) -> HttpResponse:
    image = owned_image(request, image_id)
    job = image.latest_job()
    state = job_state(job) if job else None
    result = image.latest_result()
    config = {
        "width": image.width,
        "height": image.height,
        "state": state,
        "result": None,
        # Settings chosen on the upload page for this image's batch: the editor starts there.
        "settings": image.render_settings,
    }
    if result is not None:
        if image.edits and not result.shows_edits(image):  # saved while a re-run finished
            # Engine work, so in a slot; when none comes free, the page shows the automatic
            # preview and the next save brings the edited one.
            with contextlib.suppress(ServerBusy), heavy_operation(settings.HEAVY_WAIT_S):
                refresh_edited(image, result)
        edits = edit_state(image, result)
        config["result"] = {
            "job": str(result.job_id),
            "subject_box": result.subject_box,
            "original": reverse("editor:job-file", args=[result.job_id, "preview-original"]),
            "cutout": edits["cutout"],
            "edits": edits,
            "edits_url": reverse("editor:edits", args=[image.id]),
        }
    return render(
        request,
        "editor/editor.html",
        {
            "image": image,
            "job": job,
            "state": state,
            "state_json": json.dumps(state),
            "result": result,
            "presets": PRESETS,
            "colors": SWATCHES,
            "matting_choices": Job.Matting.choices,
            "editor_config": config,
        },
    )


@require_GET
def job_status(request: HttpRequest, job_id: uuid.UUID) -> JsonResponse:
    return JsonResponse(job_state(owned_job(request, job_id)))


@require_POST
@rate_limited("uploads")
@within_quotas
def rerun(request: HttpRequest, image_id: uuid.UUID) -> JsonResponse:
    image = owned_image(request, image_id)
    form = RerunForm(request.POST)
    if not form.is_valid():
        return json_error("Matting must be auto, on or off.", HTTPStatus.BAD_REQUEST)
    with transaction.atomic():
        # Locked (SQLite: the transaction's write lock; PostgreSQL: the row), so a delete
        # cannot slip in before the job row refers to the image.
        if not Image.objects.select_for_update().filter(pk=image.pk).exists():
            raise Http404("No such image")
        admit_rerun(image)
        job = Job.objects.create(image=image, matting=form.cleaned_data["matting"])
        enqueue_job(job)
    return JsonResponse(job_state(job), status=HTTPStatus.CREATED)


def _wants_json(request: HttpRequest) -> bool:
    return request.method == "DELETE" or "application/json" in request.headers.get("Accept", "")


@require_http_methods(["POST", "DELETE"])
def delete(request: HttpRequest, image_id: uuid.UUID) -> HttpResponse:
    delete_image(owned_image(request, image_id))
    if _wants_json(request):
        return JsonResponse({"deleted": str(image_id)})
    return HttpResponseRedirect(reverse("editor:gallery"))


@require_http_methods(["POST", "DELETE"])
def delete_all(request: HttpRequest) -> HttpResponse:
    """Delete every image of the requesting owner, with all their files, at once."""
    images = list(owned_images(request))
    deleted = [str(image.id) for image in images]  # deleting an instance clears its id
    for image in images:
        delete_image(image)
    if _wants_json(request):
        return JsonResponse({"deleted": deleted})
    return HttpResponseRedirect(reverse("editor:gallery"))


@require_POST
@rate_limited("uploads")
@within_quotas
def upload_background(request: HttpRequest, image_id: uuid.UUID) -> JsonResponse:
    image = owned_image(request, image_id)
    try:
        form = BackgroundUploadForm(request.POST, request.FILES)
        with heavy_operation(settings.HEAVY_WAIT_S):
            valid = form.is_valid()
    except UNREADABLE_REQUEST:
        return json_error(MALFORMED_UPLOAD, HTTPStatus.BAD_REQUEST)
    except ServerBusy:
        return busy_response()
    if not valid:
        return json_error(form.first_error().message, HTTPStatus.BAD_REQUEST)
    admit_background(image, len(form.payload))
    if not replace_background(image, form.storage_name("background"), form.payload):
        raise Http404("No such image")  # deleted meanwhile: nothing was kept
    url = reverse("editor:image-file", args=[image.id, "background"])
    return JsonResponse({"url": f"{url}?v={uuid.uuid4().hex[:8]}"}, status=HTTPStatus.CREATED)


def _attachment(content: bytes, content_type: str, filename: str) -> HttpResponse:
    response = HttpResponse(content, content_type=content_type)
    response["Content-Disposition"] = content_disposition_header(True, filename)
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def download(request: HttpRequest, image_id: uuid.UUID) -> HttpResponse:
    image = owned_image(request, image_id)
    result = image.latest_result()
    if result is None:
        return json_error("This image has no finished result yet.", HTTPStatus.CONFLICT)
    form = RenderForm(request.GET)
    if not form.is_valid():
        return json_error(form.first_error(), HTTPStatus.BAD_REQUEST)
    limited = limit(request, "downloads")
    if limited is not None:
        return limited
    return _rendered(image, result, form.cleaned_data)


def _rendered(image: Image, result: Result, choice: dict[str, object]) -> HttpResponse:
    """The full-resolution file ``choice`` asks for, rendered in a heavy-operation slot."""
    try:
        with heavy_operation(settings.HEAVY_WAIT_S):
            rendered = render_download(image, result, choice)
    except ServerBusy:
        return busy_response()
    except (EngineError, LookupError) as exc:
        return json_error(str(exc), HTTPStatus.BAD_REQUEST)
    except FileNotFoundError:
        raise Http404("No such image") from None  # deleted (or expired) meanwhile
    return _attachment(rendered.content, rendered.content_type, rendered.filename)


# Files a person may fetch, by the name in the URL: (model field, download?).
IMAGE_FILES = {"original": "original", "background": "background"}
JOB_FILES = {
    "cutout": "cutout",
    "mask": "mask",
    "preview-original": "preview_original",
    "preview-cutout": "preview_cutout",
    "thumb-original": "thumb_original",
    "thumb-cutout": "thumb_cutout",
}


def _serve(field_file: FieldFile, filename: str | None = None) -> FileResponse:
    if not field_file:
        raise Http404("No such file")
    try:
        opened = field_file.open("rb")
    except FileNotFoundError:
        raise Http404("No such file") from None  # deleted (or expired) meanwhile
    response = FileResponse(opened, as_attachment=filename is not None, filename=filename)
    # Owner-only: never cached by shared caches.
    response["Cache-Control"] = "private, no-store"
    return response


@require_GET
def image_file(request: HttpRequest, image_id: uuid.UUID, name: str) -> FileResponse:
    image = owned_image(request, image_id)
    if name not in IMAGE_FILES:
        raise Http404("No such file")
    return _serve(getattr(image, IMAGE_FILES[name]))


# Job files people download (the others are previews the pages show).
DOWNLOADS = ("cutout", "mask")
# Previews shown from the edited copies while the image's edits apply to the result.
EDITED_COPIES = {"preview-cutout": "edited_preview", "thumb-cutout": "edited_thumb"}


@require_GET
def job_file(request: HttpRequest, job_id: uuid.UUID, name: str) -> HttpResponse:
    job = owned_job(request, job_id)
    if name not in JOB_FILES or job.status != Job.Status.DONE:
        raise Http404("No such file")
    result, image = job.result, job.image
    if name in EDITED_COPIES and result.shows_edits(image):
        return _serve(getattr(result, EDITED_COPIES[name]))
    if name not in DOWNLOADS:
        return _serve(getattr(result, JOB_FILES[name]))
    limited = limit(request, "downloads")
    if limited is not None:
        return limited
    if not image.edits:
        return _serve(getattr(result, JOB_FILES[name]), f"{image.stem}-{name}.png")
    # With edits the stored file is not what the person sees: render it with them.
    choice = RenderForm({"output": name})
    choice.is_valid()
    return _rendered(image, result, choice.cleaned_data)
