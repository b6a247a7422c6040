"""The jobs API, ``/api/v1/jobs``: submit images, follow their jobs, download results,
delete them. Thin views: the key (api.auth), then api.job_submission / api.job_results do
the work; every refusal is an ApiError in remove.bg's error shape.

Another key's job, a browser's job, a malformed id and a deleted or expired job all answer
the same 404, so ids cannot be probed.
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from functools import wraps
from http import HTTPStatus
from typing import Any
from urllib.parse import urlencode

from django.db.models import Q
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt

from api.auth import authenticate
from api.errors import ApiError, bad_request
from api.job_data import job_data, request_base
from api.job_forms import JobListForm
from api.job_results import result_response
from api.job_submission import submit
from api.limits import rate_state
from api.models import ApiJob, ApiKey
from editor.results import delete_image
from editor.retention import keep_alive

NOT_FOUND = (
    "No such job: it does not exist, was deleted or has expired, or another key submitted it."
)


def api_view(*methods: str) -> Callable[[Callable[..., HttpResponse]], Callable[..., HttpResponse]]:
    """A key-authenticated view (no cookies, so no CSRF token) answering ``methods``; an
    ApiError raised inside becomes its answer."""

    def decorate(view: Callable[..., HttpResponse]) -> Callable[..., HttpResponse]:
        @csrf_exempt
        @wraps(view)
        def guarded(request: HttpRequest, *args: Any, **kwargs: Any) -> HttpResponse:
            try:
                if request.method not in methods:
                    raise ApiError(
                        HTTPStatus.METHOD_NOT_ALLOWED,
                        f"Use {' or '.join(methods)} here.",
                        "method_not_allowed",
                        headers={"Allow": ", ".join(methods)},
                    )
                key = authenticate(request)
                # With RETENTION_HOURS = 0 a key's images stay while it keeps calling.
                keep_alive(key.owner)
                return view(request, key, *args, **kwargs)
            except ApiError as refused:
                return refused.response()

        return guarded

    return decorate


def owned(key: ApiKey, job_id: str) -> ApiJob:
    """``key``'s job ``job_id``; 404 for anything else (see the module doc)."""
    try:
        pk = uuid.UUID(job_id)
    except ValueError:
        pk = None
    found = ApiJob.objects.of_key(key).filter(pk=pk).first() if pk is not None else None
    if found is None:
        raise ApiError(HTTPStatus.NOT_FOUND, NOT_FOUND, "not_found")
    found.key = key  # the same row, already loaded
    return found


def _with_rate(response: HttpResponse, key: ApiKey) -> HttpResponse:
    for name, value in rate_state(key).headers().items():
        response[name] = value
    return response


def _list(request: HttpRequest, key: ApiKey) -> JsonResponse:
    query = JobListForm(request.GET).checked()
    jobs = ApiJob.objects.of_key(key)
    if query["status"]:
        jobs = jobs.filter(job__status=query["status"])
    if query["before"] is not None:
        cursor = ApiJob.objects.of_key(key).filter(pk=query["before"]).first()
        if cursor is None:
            raise bad_request("before: no such job (it may have been deleted or expired).")
        jobs = jobs.filter(
            Q(created_at__lt=cursor.created_at) | Q(created_at=cursor.created_at, pk__lt=cursor.pk)
        )
    limit = query["limit"]
    page = list(jobs[: limit + 1])
    base = request_base(request)
    following = None
    if len(page) > limit:
        page = page[:limit]
        params = {"limit": limit, "before": page[-1].pk}
        if query["status"]:
            params["status"] = query["status"]
        following = f"{base}{reverse('api:jobs')}?{urlencode(params)}"
    return JsonResponse(
        {
            "data": [job_data(api_job, base) for api_job in page],
            "meta": {"limit": limit, "next": following},
        }
    )


@api_view("GET", "POST")
def jobs(request: HttpRequest, key: ApiKey) -> HttpResponse:
    """GET: this key's jobs, newest first, a page at a time. POST: submit images (202)."""
    if request.method == "GET":
        return _with_rate(_list(request, key), key)
    submitted = submit(request, key)
    base = request_base(request)
    data = [job_data(api_job, base) for api_job in submitted.jobs]
    response = JsonResponse({"data": data}, status=HTTPStatus.ACCEPTED)
    if len(data) == 1:
        response["Location"] = data[0]["urls"]["self"]
    for name, value in submitted.rate.headers().items():
        response[name] = value
    return response


@api_view("GET", "DELETE")
def job(request: HttpRequest, key: ApiKey, job_id: str) -> HttpResponse:
    """GET: the job's state and URLs. DELETE: the image, its job and every file (204)."""
    api_job = owned(key, job_id)
    if request.method == "DELETE":
        delete_image(api_job.job.image)
        return _with_rate(HttpResponse(status=HTTPStatus.NO_CONTENT), key)
    return _with_rate(JsonResponse({"data": job_data(api_job, request_base(request))}), key)


@api_view("GET", "POST")
def job_result(request: HttpRequest, key: ApiKey, job_id: str) -> HttpResponse:
    """The finished job's result, rendered with remove.bg's options (api.job_results)."""
    return result_response(request, owned(key, job_id))
