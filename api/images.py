"""Where a call's pictures come from: an uploaded file, base64 text, or (when the operator
turns it on, settings.API_IMAGE_URLS) a URL fetched by api.outbound, which refuses private
addresses."""

from __future__ import annotations

import binascii
from base64 import b64decode
from http import HTTPStatus

from django.conf import settings
from django.core.files.uploadedfile import SimpleUploadedFile, UploadedFile

from api.errors import ApiError, bad_request, busy
from api.outbound import FetchError, fetch, policy_from_settings
from editor.forms import ImageUploadForm, display_name, human_bytes
from editor.heavy import ServerBusy, heavy_operation

# An ImageUploadForm refusal's status → remove.bg-style error code.
REJECTION_CODES = {413: "file_too_large", 415: "invalid_file_type"}

URLS_OFF = (
    "Fetching images from URLs is turned off on this server: send the image as image_file "
    "or image_file_b64."
)


def _too_large(field: str) -> ApiError:
    return ApiError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        f"{field}: the image is larger than the {human_bytes(settings.MAX_UPLOAD_BYTES)} limit.",
        "file_too_large",
    )


def read_file(field: str, upload: UploadedFile) -> bytes:
    limit = settings.MAX_UPLOAD_BYTES
    if upload.size is not None and upload.size > limit:
        raise _too_large(field)
    content = upload.read(limit + 1)
    if len(content) > limit:
        raise _too_large(field)
    return content


_NO_WHITESPACE = str.maketrans("", "", " \t\n\r\f\v")


def decode_b64(field: str, text: str) -> bytes:
    # Base64 is 4 characters for 3 bytes; a data: URL's header is allowed and skipped.
    if text.startswith("data:") and "," in text:
        text = text.split(",", 1)[1]
    if len(text) > (settings.MAX_UPLOAD_BYTES // 3 + 1) * 4 + 64:
        raise _too_large(field)
    try:
        # One copy without the whitespace: split() would make a string object per chunk
        # ("AB AB AB …": up to 25 times the body's size in memory).
        return b64decode(text.translate(_NO_WHITESPACE), validate=True)
    except (binascii.Error, ValueError):
        raise bad_request(f"{field} is not valid base64.") from None


def fetch_url(field: str, url: str) -> bytes:
    if not settings.API_IMAGE_URLS:
        raise bad_request(f"{field}: {URLS_OFF}", "image_urls_disabled")
    try:
        return fetch(url, policy_from_settings()).content
    except FetchError as failed:
        raise ApiError(failed.status, f"{field}: {failed.message}", failed.code) from None


def picture(
    files: dict[str, UploadedFile], fields: dict[str, str], prefix: str
) -> tuple[str, bytes] | None:
    """The picture given as ``<prefix>_file``, ``<prefix>_file_b64`` or ``<prefix>_url``
    (at most one of them), as (a name for it, its bytes); None when none is given."""
    given = [
        name
        for name in (f"{prefix}_file", f"{prefix}_file_b64", f"{prefix}_url")
        if name in files or fields.get(name)
    ]
    if not given:
        return None
    if len(given) > 1:
        raise bad_request(f"Send only one of {', '.join(given)}.", "multiple_sources")
    field = given[0]
    return read_source(field, files[field] if field in files else fields[field], field)


def read_source(field: str, value: UploadedFile | str, label: str) -> tuple[str, bytes]:
    """One picture sent as ``field`` (an upload, base64 text or a URL) as (a name for it,
    its bytes); refusals name it by ``label``."""
    if isinstance(value, UploadedFile):
        return display_name(value.name or field), read_file(label, value)
    if field.endswith("_b64"):
        return f"{field.removesuffix('_file_b64')}.b64", decode_b64(label, value)
    name = value.rsplit("/", 1)[-1].split("?", 1)[0].split("#", 1)[0]
    return display_name(name or field)[:200], fetch_url(label, value)


def check_picture(upload: UploadedFile | tuple[str, bytes], label: str = "") -> ImageUploadForm:
    """A picture checked as the browser's upload checks it (a bounded decode, in a
    heavy-operation slot); raises 400/413/415, the message led by ``label`` when given."""
    if isinstance(upload, tuple):
        upload = SimpleUploadedFile(*upload)
    form = ImageUploadForm(files={"file": upload})
    try:
        with heavy_operation(settings.HEAVY_WAIT_S):
            valid = form.is_valid()
    except ServerBusy:
        raise busy() from None
    if not valid:
        rejection = form.first_error()
        message = f"{label}: {rejection.message}" if label else rejection.message
        code = REJECTION_CODES.get(rejection.status, "invalid_image")
        raise ApiError(rejection.status, message, code)
    return form
