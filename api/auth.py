"""Who is calling: the API key in ``X-Api-Key`` (remove.bg's header) or ``Authorization:
Bearer``. Browser pages never need one; every /api/ call except the documentation does."""

from __future__ import annotations

from http import HTTPStatus

from django.http import HttpRequest

from api.errors import ApiError
from api.models import ApiKey

MISSING = (
    "Missing API key: send it in the X-Api-Key header (create one with `manage.py apikey create`)."
)
INVALID = "Invalid API key: it is unknown or was revoked."


def key_text(headers: dict[str, str] | object) -> str | None:
    """The key a request or websocket handshake sent, if any."""
    get = headers.get  # type: ignore[attr-defined]
    text = get("X-Api-Key") or get("x-api-key")
    if text:
        return text.strip()
    authorization = get("Authorization") or get("authorization") or ""
    scheme, _, value = authorization.partition(" ")
    if scheme.lower() == "bearer" and value.strip():
        return value.strip()
    return None


def authenticate(request: HttpRequest) -> ApiKey:
    """The request's active key; raises 403 in remove.bg's shape otherwise."""
    text = key_text(request.headers)
    if text is None:
        raise ApiError(HTTPStatus.FORBIDDEN, MISSING, "auth_failed")
    key = ApiKey.objects.find(text)
    if key is None:
        raise ApiError(HTTPStatus.FORBIDDEN, INVALID, "auth_failed")
    key.touch()
    return key
