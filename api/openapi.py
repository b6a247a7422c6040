"""The HTTP API's OpenAPI 3.1 document, the single description of its contract: served at
``GET /api/openapi.json``, rendered at ``GET /api/docs`` and checked against live answers
by the tests (tests/api/test_openapi*.py, schemathesis).

``document()`` builds it once from api.openapi_schemas (the components) and the paths here.
"""

from __future__ import annotations

from copy import deepcopy
from functools import cache
from http import HTTPStatus
from typing import Any

from api.openapi_schemas import (
    HEADERS,
    RATE_HEADERS,
    RENDER_OPTIONS,
    RESULT_HEADERS,
    SCHEMAS,
    SECURITY_SCHEMES,
    Schema,
)

# A 64×64 PNG of a red disc: the request examples' photo, small so an example call is quick.
EXAMPLE_PNG_B64 = (
    "iVBORw0KGgoAAAANSUhEUgAAAEAAAABACAIAAAAlC+aJAAAA5ElEQVR42u2aOw6DQAxEweI6ScP9j0ADF0lDnwME"
    "CWGPY638XCI0O88fWD7zeX6mkcOmwQMAAAAAAAAAAKiMJUn3WN+/B1/bLl9olm/mLq3nYSgBbq1nYFiJe8f5uQA+"
    "NxIGq3KvYrBC9xIFq3Uf12l8J1alP6jWtQLa9Ec0W1YgI/1uZZ4HAPg3QN4A+PRpIQAAAAAAAAAYCiDj/WZEnxYC"
    "oAAgbwwcyl1bKKMIPs3GQ6wtglut92VUVYSIjhWuLVGw2vzF+a2wByQdKBvip25U88OX+icYY/wrwXYaAAAAaAXw"
    "BW+YVpmx+w9dAAAAAElFTkSuQmCC"
)

DESCRIPTION = """\
Background removal over HTTP, compatible with remove.bg's API: clients written for
`https://api.remove.bg/v1.0/removebg` work with this server's base URL instead.

**Keys.** An operator creates one with `python manage.py apikey create NAME` (printed once).
Send it in the `X-Api-Key` header, or as `Authorization: Bearer KEY`.

**Credits.** A result of at most 0.25 megapixels costs 0.25 credits, a larger one 1 credit per
started 25 megapixels; a key may have a monthly quota (402 past it). Each key has a rate limit
in images per period (429 with `Retry-After` past it; `X-RateLimit-*` headers on answers).

**Two ways to work.** `POST /api/v1.0/removebg` answers with the finished image (the call
waits for it). The jobs API (`/api/v1/jobs`) takes up to API_JOBS_MAX_FILES images at once,
answers 202 at once, and tells when each is done: poll the job, listen on its websocket
(`urls.socket`, with the key in the handshake's `X-Api-Key` header), or give a `webhook_url`.

**Errors** are JSON in remove.bg's shape: `{"errors": [{"title": ..., "code": ...}]}`.
"""

JOBS_DESCRIPTION = """\
Submit images, follow them, fetch their results. Each job's `urls.socket` is its progress
websocket (`wss://HOST/ws/api/jobs/ID/`): open it with the key in the handshake's `X-Api-Key`
header (never in the URL). It sends the job as `GET /api/v1/jobs/{job_id}` shows it, once at
once and on every change, and closes with 1000 after the final state; 1008 when the key is
unknown, revoked or not the job's; 1013 when the key or address has too many sockets open.
"""

ERRORS = {
    HTTPStatus.BAD_REQUEST: "A parameter or the image is not valid (the title says which).",
    HTTPStatus.PAYMENT_REQUIRED: "The key's monthly quota of credits does not cover it.",
    HTTPStatus.FORBIDDEN: "No API key, or an unknown or revoked one.",
    HTTPStatus.NOT_FOUND: "No such job for this key (or it was deleted or has expired).",
    HTTPStatus.CONFLICT: "The job has no result: it is not finished yet, or it failed.",
    HTTPStatus.REQUEST_ENTITY_TOO_LARGE: "The image or the request is too large.",
    HTTPStatus.UNSUPPORTED_MEDIA_TYPE: "Not an image format this server reads, or an "
    "unsupported Content-Type.",
    HTTPStatus.TOO_MANY_REQUESTS: "The key's rate limit, or its queue, is full: see Retry-After.",
    HTTPStatus.INTERNAL_SERVER_ERROR: "Processing failed on the server's side.",
    HTTPStatus.SERVICE_UNAVAILABLE: "The server is busy: see Retry-After.",
    HTTPStatus.GATEWAY_TIMEOUT: "An image or webhook URL's host did not answer in time.",
    HTTPStatus.INSUFFICIENT_STORAGE: "The server's disk budget is full: see Retry-After.",
}
SUBMIT_ERRORS = (400, 402, 403, 413, 415, 429, 500, 503, 504, 507)
IMAGE_TYPES = ("image/png", "image/jpeg", "image/webp", "application/zip")


def _ref(kind: str, name: str) -> Schema:
    return {"$ref": f"#/components/{kind}/{name}"}


def _headers(names: tuple[str, ...]) -> dict[str, Schema]:
    return {name: _ref("headers", name) for name in names}


def _errors(*statuses: int) -> dict[str, Schema]:
    return {str(status): _ref("responses", f"Error{status}") for status in statuses}


def _error_response(status: int) -> Schema:
    return {
        "description": ERRORS[HTTPStatus(status)],
        "headers": _headers((*RATE_HEADERS, "Retry-After")),
        "content": {"application/json": {"schema": _ref("schemas", "Error")}},
    }


def _json(schema: str, description: str, headers: tuple[str, ...] = RATE_HEADERS) -> Schema:
    return {
        "description": description,
        "headers": _headers(headers),
        "content": {"application/json": {"schema": _ref("schemas", schema)}},
    }


def _body(form: str, fields: str, example: Schema | None = None) -> Schema:
    """A request body in remove.bg's three content types."""
    json_type: Schema = {"schema": _ref("schemas", fields)}
    if example is not None:
        json_type["examples"] = {"photo": {"summary": "A small PNG, base64", "value": example}}
    return {
        "required": True,
        "content": {
            "multipart/form-data": {"schema": _ref("schemas", form)},
            "application/x-www-form-urlencoded": {"schema": _ref("schemas", fields)},
            "application/json": json_type,
        },
    }


def _image_answer(description: str) -> Schema:
    content: dict[str, Schema] = {
        media: {"schema": {"type": "string", "contentMediaType": media}} for media in IMAGE_TYPES
    }
    content["application/json"] = {"schema": _ref("schemas", "RemoveBgResult")}
    return {
        "description": description + " With `Accept: application/json`, JSON with the image "
        "base64-encoded.",
        "headers": _headers(RESULT_HEADERS),
        "content": content,
    }


JOB_ID: Schema = {
    "name": "job_id",
    "in": "path",
    "required": True,
    "description": "The job's id, as the submission answered it.",
    "schema": {"type": "string", "format": "uuid"},
}


def _query(name: str, schema: Schema) -> Schema:
    return {
        "name": name,
        "in": "query",
        "required": False,
        "description": schema.get("description", ""),
        "schema": {key: value for key, value in schema.items() if key != "description"},
    }


# Where a submission's first job leads (each job's own URLs are in its "urls" too).
JOB_LINKS = {
    name: {"operationId": operation, "parameters": {"job_id": "$response.body#/data/0/id"}}
    for name, operation in (
        ("GetJob", "getJob"),
        ("GetJobResult", "getJobResult"),
        ("DeleteJob", "deleteJob"),
    )
}

RESULT_QUERY = [_query(name, schema) for name, schema in RENDER_OPTIONS.items()] + [
    _query("bg_image_url", {"type": "string", "description": "A background picture's URL."}),
]

PATHS: dict[str, Schema] = {
    "/api/v1.0/removebg": {
        "post": {
            "operationId": "removeBackground",
            "tags": ["remove.bg"],
            "summary": "Remove the background of one image and answer the result",
            "description": "remove.bg's call: send the photo as `image_file` (multipart), "
            "`image_file_b64` or `image_url`, with any render options. The server keeps "
            "nothing once it has answered.",
            "requestBody": _body(
                "RemoveBgForm",
                "RemoveBgFields",
                {"image_file_b64": EXAMPLE_PNG_B64, "size": "preview", "bg_color": "white"},
            ),
            "responses": {
                "200": _image_answer("The result, in the format asked for."),
                **_errors(*SUBMIT_ERRORS),
            },
        }
    },
    "/api/v1.0/account": {
        "get": {
            "operationId": "getAccount",
            "tags": ["remove.bg"],
            "summary": "Credits left this month, and the key's usage",
            "responses": {"200": _json("Account", "The key's account."), **_errors(403)},
        }
    },
    "/api/v1/jobs": {
        "get": {
            "operationId": "listJobs",
            "tags": ["Jobs"],
            "summary": "This key's jobs, newest first, a page at a time",
            "parameters": [
                _query("limit", {"type": "integer", "minimum": 1, "maximum": 100, "default": 20}),
                _query(
                    "before",
                    {
                        "type": "string",
                        "format": "uuid",
                        "description": "A job id: the page after it (meta.next links it).",
                    },
                ),
                _query("status", SCHEMAS["Job"]["properties"]["status"]),
            ],
            "responses": {"200": _json("JobPage", "A page of jobs."), **_errors(400, 403)},
        },
        "post": {
            "operationId": "submitJobs",
            "tags": ["Jobs"],
            "summary": "Submit one or more images",
            "description": "All or nothing: every image is checked before any is kept. Render "
            "options sent here become the defaults of the jobs' result downloads.",
            "requestBody": _body(
                "JobForm", "JobFields", {"image_file_b64": EXAMPLE_PNG_B64, "size": "preview"}
            ),
            "responses": {
                "202": {
                    **_json(
                        "JobList",
                        "The jobs, queued. With one image, Location is its URL.",
                        (*RATE_HEADERS, "Location"),
                    ),
                    "links": JOB_LINKS,
                },
                **_errors(*SUBMIT_ERRORS),
            },
        },
    },
    "/api/v1/jobs/{job_id}": {
        "parameters": [JOB_ID],
        "get": {
            "operationId": "getJob",
            "tags": ["Jobs"],
            "summary": "A job's state",
            "responses": {"200": _json("JobOne", "The job."), **_errors(403, 404)},
        },
        "delete": {
            "operationId": "deleteJob",
            "tags": ["Jobs"],
            "summary": "Delete the job, its image and every file made from it",
            "responses": {
                "204": {"description": "Deleted.", "headers": _headers(RATE_HEADERS)},
                **_errors(403, 404),
            },
        },
    },
    "/api/v1/jobs/{job_id}/result": {
        "parameters": [JOB_ID],
        "get": {
            "operationId": "getJobResult",
            "tags": ["Jobs"],
            "summary": "The finished job's result, rendered with remove.bg's options",
            "description": "Options in the query string win over those of the submission. A "
            "job costs what its largest download costs: the first download charges for its "
            "size, a later larger one the difference, others nothing.",
            "parameters": RESULT_QUERY,
            "responses": {
                "200": _image_answer("The result."),
                **_errors(400, 403, 404, 409, 413, 415, 429, 503, 504),
            },
        },
        "post": {
            "operationId": "renderJobResult",
            "tags": ["Jobs"],
            "summary": "The result, with options (and pictures) in the body",
            "description": "As GET, for a background picture (`bg_image_file`) or a hint map "
            "(`hints_file`) that does not fit in a URL.",
            "requestBody": _body("ResultForm", "ResultFields"),
            "responses": {
                "200": _image_answer("The result."),
                **_errors(400, 403, 404, 409, 413, 415, 429, 503, 504),
            },
        },
    },
    "/api/openapi.json": {
        "get": {
            "operationId": "getOpenApiDocument",
            "tags": ["Document"],
            "summary": "This document (no key needed); rendered for people at /api/docs",
            "security": [],
            "responses": {
                "200": {
                    "description": "The OpenAPI 3.1 document.",
                    "content": {"application/json": {"schema": {"type": "object"}}},
                }
            },
        }
    },
}

WEBHOOKS: dict[str, Schema] = {
    "jobFinished": {
        "post": {
            "summary": "A job ended (sent to the submission's webhook_url)",
            "description": "Signed with the key's webhook secret (shown by `apikey create`): "
            "`X-Bgremover-Signature` is `sha256=` and the hex HMAC-SHA256 of the timestamp, a "
            "dot and the exact body. Retried with back-off until a 2xx answer.",
            "parameters": [
                {
                    "name": "X-Bgremover-Timestamp",
                    "in": "header",
                    "required": True,
                    "description": "Unix seconds when this attempt was signed.",
                    "schema": {"type": "string", "pattern": r"^\d+$"},
                },
                {
                    "name": "X-Bgremover-Signature",
                    "in": "header",
                    "required": True,
                    "schema": {"type": "string", "pattern": r"^sha256=[0-9a-f]{64}$"},
                },
            ],
            "requestBody": {
                "required": True,
                "content": {"application/json": {"schema": _ref("schemas", "JobFinished")}},
            },
            "responses": {"2XX": {"description": "Received; any other answer is retried."}},
        }
    }
}


@cache
def _document() -> dict[str, Any]:
    statuses = sorted({int(status) for status in ERRORS})
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "bgremover HTTP API",
            "version": "1.0",
            "description": DESCRIPTION,
            "license": {"name": "Apache-2.0", "identifier": "Apache-2.0"},
        },
        "servers": [{"url": "/"}],
        "security": [{"ApiKey": []}, {"Bearer": []}],
        "tags": [
            {"name": "remove.bg", "description": "remove.bg's synchronous call and account."},
            {"name": "Jobs", "description": JOBS_DESCRIPTION},
            {"name": "Document", "description": "This description of the API."},
        ],
        "paths": PATHS,
        "webhooks": WEBHOOKS,
        "components": {
            "schemas": SCHEMAS,
            "headers": HEADERS,
            "responses": {f"Error{status}": _error_response(status) for status in statuses},
            "securitySchemes": SECURITY_SCHEMES,
        },
    }


def document() -> dict[str, Any]:
    """The OpenAPI document (a fresh copy: callers may change theirs)."""
    return deepcopy(_document())
