"""Errors in remove.bg's shape: ``{"errors": [{"title": …, "code": …}]}`` with its statuses, so
clients written for remove.bg report them as they would remove.bg's own."""

from __future__ import annotations

from http import HTTPStatus

from django.http import JsonResponse

from editor.refusals import count_refusal

# Refusals counted in /metrics (editor.refusals.REFUSAL_REASONS), by status.
REFUSAL_REASONS = {
    HTTPStatus.BAD_REQUEST: "api_bad_request",
    HTTPStatus.PAYMENT_REQUIRED: "api_quota",
    HTTPStatus.FORBIDDEN: "api_auth",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "api_too_large",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "api_unsupported_type",
    HTTPStatus.TOO_MANY_REQUESTS: "api_rate_limit",
    HTTPStatus.SERVICE_UNAVAILABLE: "api_busy",
    HTTPStatus.INSUFFICIENT_STORAGE: "disk_budget",
}


class ApiError(Exception):
    """A refused API request; ``response()`` is what the client is told."""

    def __init__(
        self,
        status: int,
        title: str,
        code: str,
        retry_after_s: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(title)
        self.status = status
        self.title = title
        self.code = code
        self.retry_after_s = retry_after_s
        self.headers = headers or {}

    def response(self) -> JsonResponse:
        reason = REFUSAL_REASONS.get(self.status)
        if reason is not None:
            count_refusal(reason)
        response = JsonResponse(
            {"errors": [{"title": self.title, "code": self.code}]}, status=self.status
        )
        for name, value in self.headers.items():
            response[name] = value
        if self.retry_after_s is not None:
            response["Retry-After"] = str(self.retry_after_s)
        return response


def bad_request(title: str, code: str = "invalid_parameters") -> ApiError:
    return ApiError(HTTPStatus.BAD_REQUEST, title, code)


# Seconds a client is asked to wait when the server is busy (editor.quotas waits as long).
BUSY_RETRY_AFTER_S = 30
BUSY = "The server is busy with other images right now. Please try again shortly."


def busy(title: str = BUSY) -> ApiError:
    return ApiError(HTTPStatus.SERVICE_UNAVAILABLE, title, "server_busy", BUSY_RETRY_AFTER_S)


def method_not_allowed(*methods: str) -> ApiError:
    """405 in remove.bg's shape, with the Allow header RFC 9110 asks for."""
    return ApiError(
        HTTPStatus.METHOD_NOT_ALLOWED,
        f"Use {' or '.join(methods)} here.",
        "method_not_allowed",
        headers={"Allow": ", ".join(methods)},
    )
