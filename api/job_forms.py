"""Validation for the jobs API: a submission's own fields, where its pictures come from, and
the list's paging. Each bad input becomes an ApiError with remove.bg's error shape."""

from __future__ import annotations

from dataclasses import dataclass
from http import HTTPStatus
from typing import Any

from django import forms
from django.conf import settings
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest

from api.errors import ApiError, bad_request
from api.images import check_picture, read_source
from api.options import FIELDS, SHADOW_FIELDS, RemoveBgForm
from api.outbound import FetchError
from api.request_data import RequestData
from api.webhooks import check_webhook_url, webhook_policy_from_settings
from editor.forms import FirstErrorMixin, ImageUploadForm, human_bytes
from editor.models import Job

SOURCE_FIELDS = ("image_file", "image_file_b64", "image_url")
NO_IMAGE = (
    "No image: send image_file (multipart/form-data, repeat it for several images), "
    "image_file_b64 or image_url."
)


class _ParametersForm(FirstErrorMixin, forms.Form):
    """A refusal names its field (clean()'s own messages stand alone)."""

    invalid_message = "The parameters are not valid."
    unnamed_fields = frozenset({"__all__"})


class JobSubmitForm(_ParametersForm):
    """A submission's own fields; any other field (remove.bg's render options) is left for
    the result download, as remove.bg ignores fields it does not know."""

    matting = forms.ChoiceField(
        choices=Job.Matting.choices,
        required=False,
        error_messages={"invalid_choice": "must be auto, on or off."},
    )
    webhook_url = forms.CharField(max_length=2048, required=False, strip=True)

    # A webhook URL refused for a reason other than its shape (e.g. its DNS timed out).
    refusal: ApiError | None = None

    def clean_matting(self) -> str:
        return self.cleaned_data.get("matting") or Job.Matting.AUTO

    def clean_webhook_url(self) -> str:
        url = self.cleaned_data.get("webhook_url") or ""
        if not url:
            return ""
        try:
            check_webhook_url(url, webhook_policy_from_settings())
        except FetchError as refused:
            if refused.status != HTTPStatus.BAD_REQUEST:
                self.refusal = ApiError(refused.status, f"webhook_url: {refused.message}", "")
            raise forms.ValidationError(refused.message, code=refused.code) from None
        return url

    def checked(self) -> dict[str, Any]:
        """The cleaned fields; raises a 400 ApiError (504 when the webhook's host could not
        be resolved in time) naming the first bad one."""
        if self.is_valid():
            return self.cleaned_data
        if self.refusal is not None:
            self.refusal.code = "invalid_webhook_url"
            raise self.refusal
        code = "invalid_webhook_url" if "webhook_url" in self.errors else "invalid_parameters"
        raise bad_request(self.first_error(), code)


# remove.bg's render options a submission may carry for its results (api.options).
RENDER_FIELDS = (frozenset(FIELDS) | frozenset(SHADOW_FIELDS) | {"shadow_type"}) - {"matting"}


def render_fields(data: RequestData) -> RemoveBgForm:
    """The submission's render options, checked as a result download checks them (400
    naming the first bad one); ``request_data.fields`` holds them as sent, to be kept as the
    defaults of its downloads."""
    given = {name: value for name, value in data.fields.items() if name in RENDER_FIELDS}
    form = RemoveBgForm(RequestData(given))
    if not form.is_valid():
        raise bad_request(form.first_error())
    return form


@dataclass(frozen=True)
class Source:
    """One picture of a submission, not read yet: ``field`` and its value (an upload, base64
    text or a URL)."""

    field: str
    value: UploadedFile | str


def sources(request: HttpRequest, data: RequestData) -> list[Source]:
    """The submission's pictures in the order uploads, base64, URLs. Multipart bodies may
    repeat each field; JSON and URL-encoded bodies carry one of each."""
    found: list[Source] = []
    if request.content_type == "multipart/form-data":
        found += [Source("image_file", upload) for upload in request.FILES.getlist("image_file")]
        for field in ("image_file_b64", "image_url"):
            found += [Source(field, value) for value in request.POST.getlist(field) if value]
    else:
        for field in ("image_file_b64", "image_url"):
            if data.fields.get(field):
                found.append(Source(field, data.fields[field]))
    if not found:
        raise bad_request(NO_IMAGE, "missing_image")
    limit = settings.API_JOBS_MAX_FILES
    if len(found) > limit:
        raise bad_request(
            f"Too many images: {len(found)} in one request, the most is {limit}. Send the "
            "rest in another request.",
            "too_many_images",
        )
    return found


def _label(index: int, count: int, field: str) -> str:
    return f"{field}" if count == 1 else f"Image {index + 1} of {count} ({field})"


@dataclass
class CheckedImage:
    name: str
    form: ImageUploadForm


def check_images(found: list[Source]) -> list[CheckedImage]:
    """Read and check every picture as the browser's upload checks it, in order; the first
    bad one refuses the whole submission (400, 413 or 415, naming which picture), so a
    client never has to work out which of its images were kept."""
    checked: list[CheckedImage] = []
    total = 0
    limit = settings.MAX_UPLOAD_BYTES
    for index, source in enumerate(found):
        label = _label(index, len(found), source.field)
        name, content = read_source(source.field, source.value, label)
        # Held until stored, as read (trailing data and all): all of them together stay
        # within one upload's size.
        total += len(content)
        if total > limit:
            raise ApiError(
                HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
                f"Together the images are larger than the {human_bytes(limit)} one request "
                "may carry. Send them in several requests.",
                "file_too_large",
            )
        form = check_picture((name, content), label if len(found) > 1 else "")
        checked.append(CheckedImage(name, form))
    return checked


class JobListForm(_ParametersForm):
    """``GET /api/v1/jobs``: ``limit`` (1-100, default 20), ``before`` (a job id: the page
    after it, as ``meta.next`` links), ``status`` (only jobs in that state)."""

    DEFAULT_LIMIT = 20
    MAX_LIMIT = 100

    limit = forms.IntegerField(min_value=1, max_value=MAX_LIMIT, required=False)
    before = forms.UUIDField(required=False)
    status = forms.ChoiceField(choices=Job.Status.choices, required=False)

    def checked(self) -> dict[str, Any]:
        if not self.is_valid():
            raise bad_request(self.first_error())
        data = dict(self.cleaned_data)
        data["limit"] = data.get("limit") or self.DEFAULT_LIMIT
        return data
