"""Errors in remove.bg's shape: ``{"errors": [{"title": …, "code": …}]}`` with its statuses, so
clients written for remove.bg report them as they would remove.bg's own."""

from __future__ import annotations

from http import HTTPStatus

from django.http import JsonResponse

from editor.operations import count_refusal


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
        count_refusal(f"api_{self.code}")
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
