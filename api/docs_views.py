"""The API's description: ``GET /api/openapi.json`` (the OpenAPI 3.1 document, api.openapi)
and ``GET /api/docs`` (the same document rendered on the server for people: no script, no
outside asset, so it works under the site's CSP). Neither needs a key."""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views.decorators.http import require_safe

from api.openapi import document
from api.openapi_page import page


@require_safe
def openapi_json(request: HttpRequest) -> JsonResponse:
    return JsonResponse(document(), json_dumps_params={"indent": 1})


@require_safe
def docs(request: HttpRequest) -> HttpResponse:
    return render(request, "api/docs.html", {"api": page()})
