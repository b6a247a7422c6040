"""Reading an API request's fields the three ways remove.bg takes them: multipart form data,
a URL-encoded form, or a JSON object. The body is bounded by Daphne before we see it
(editor.request_limits); JSON and URL-encoded bodies are read here in one bounded read
rather than through ``request.body``, whose 2.5 MB field limit a base64 image would pass."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from http import HTTPStatus
from urllib.parse import parse_qsl

from django.core.exceptions import RequestDataTooBig, TooManyFieldsSent, TooManyFilesSent
from django.core.files.uploadedfile import UploadedFile
from django.http import HttpRequest
from django.http.multipartparser import MultiPartParserError

from api.errors import ApiError, bad_request
from editor.request_limits import max_request_bytes, too_large_message

# More fields than remove.bg has, with room to spare; a longer list is not a real client.
MAX_FIELDS = 64


@dataclass
class RequestData:
    fields: dict[str, str] = field(default_factory=dict)
    files: dict[str, UploadedFile] = field(default_factory=dict)


def _too_large() -> ApiError:
    return ApiError(
        HTTPStatus.REQUEST_ENTITY_TOO_LARGE,
        f"{too_large_message()} Send large images as image_file (multipart/form-data).",
        "file_too_large",
    )


def _scalar(name: str, value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (str, int, float)):
        return str(value)
    raise bad_request(f"{name} must be a string, number or boolean.")


def _read_body(request: HttpRequest) -> bytes:
    limit = max_request_bytes()
    length = int(request.META.get("CONTENT_LENGTH") or 0)
    if length > limit:
        raise _too_large()
    body = request.read(limit + 1)
    if len(body) > limit:
        raise _too_large()
    return body


def read_request(request: HttpRequest) -> RequestData:
    """The request's fields and files; raises a 400 or 413 ApiError on a body it cannot read."""
    content_type = request.content_type or ""
    if content_type == "application/json":
        try:
            data = json.loads(_read_body(request) or b"{}")
        # ValueError: also a number of over 4300 digits; RecursionError: deep nesting.
        except (ValueError, RecursionError):
            raise bad_request("The body is not valid JSON.") from None
        if not isinstance(data, dict):
            raise bad_request("Send the parameters as a JSON object.")
        if len(data) > MAX_FIELDS:
            raise bad_request(f"Too many fields: at most {MAX_FIELDS}.")
        return RequestData({str(k): _scalar(k, v) for k, v in data.items() if v is not None})
    if content_type == "application/x-www-form-urlencoded":
        try:
            pairs = parse_qsl(
                _read_body(request).decode(), keep_blank_values=True, max_num_fields=MAX_FIELDS
            )
        except (UnicodeDecodeError, ValueError):
            raise bad_request("The form could not be read.") from None
        return RequestData(dict(pairs))
    if content_type == "multipart/form-data":
        try:
            fields = {name: request.POST[name] for name in request.POST}
            files = {name: request.FILES[name] for name in request.FILES}
        except RequestDataTooBig:
            raise _too_large() from None
        except (MultiPartParserError, TooManyFieldsSent, TooManyFilesSent):
            raise bad_request("The multipart form could not be read.") from None
        return RequestData(fields, files)
    if not content_type and not int(request.META.get("CONTENT_LENGTH") or 0):
        return RequestData()
    raise ApiError(
        HTTPStatus.UNSUPPORTED_MEDIA_TYPE,
        f"Unsupported Content-Type {content_type!r}: send multipart/form-data, "
        "application/x-www-form-urlencoded or application/json.",
        "invalid_content_type",
    )
