"""The OpenAPI document's components: the request fields (remove.bg's and this server's
extras), the JSON answers, the error shape, the response headers and the security schemes.

Enumerations come from the code that checks the values (api.options, the engine's parsers,
the models), so the document cannot drift from what the server accepts. The server reads
every enumerated value in any case; the document lists one spelling of each.
"""

from __future__ import annotations

from typing import Any

from api.models import PIXELS_PER_CREDIT, PREVIEW_PIXELS
from api.options import MATTING, MAX_VALUE_LENGTH, TYPE_LEVELS, TYPES
from bgremover.engine.render_options import SIZES
from bgremover.engine.shadow import SHADOW_TYPES
from editor.models import Job

Schema = dict[str, Any]

# Patterns mirror bgremover.engine.render_options (which also accepts upper case).
_NUMBER = r"(\d+(\.\d*)?|\.\d+)"
# Words of a space-separated value (roi, crop_margin, scale, position) hold no space.
_LENGTH = _NUMBER + r"(px|%)?"
_PERCENT_WORD = _NUMBER + r"%?"
_PERCENT = _NUMBER + r"\s*%?"
_SPELLING = {"50mp": "50MP", "3d": "3D"}


def _spelled(values: object) -> list[str]:
    """remove.bg's spelling of each value, in a stable order."""
    return [_SPELLING.get(value, value) for value in values]  # type: ignore[attr-defined]


def _text(description: str, **schema: Any) -> Schema:
    return {"type": "string", "maxLength": MAX_VALUE_LENGTH, "description": description, **schema}


def _choice(description: str, values: list[str], default: str) -> Schema:
    return _text(description, enum=values, default=default)


BOOLEAN = ["true", "false"]

# remove.bg's render options and this server's extras, each as it travels in a form field;
# JSON bodies may also send numbers and booleans (read as their text).
RENDER_OPTIONS: dict[str, Schema] = {
    "size": _choice(
        "The result's largest size: preview, small and regular are at most 0.25 megapixels, "
        "medium 1.5, hd 4, 4k 10; full, auto and 50MP keep the photo's size.",
        _spelled(SIZES),
        "auto",
    ),
    "type": _choice(
        "What the photo shows, reported back in X-Type (this server does not classify).",
        sorted(TYPES),
        "auto",
    ),
    "type_level": _choice(
        "remove.bg's classification level (accepted, not used).", sorted(TYPE_LEVELS), "1"
    ),
    "format": _choice(
        "The file format; auto is PNG where the result can be transparent, else JPEG.",
        ["auto", "png", "jpg", "jpeg", "webp", "zip"],
        "auto",
    ),
    "channels": _choice(
        "rgba: the cut-out; alpha: the mask alone (PNG).", ["rgba", "alpha"], "rgba"
    ),
    "roi": _text(
        "The region of interest x1 y1 x2 y2, each in px or % (of the width, of the height).",
        pattern=rf"^\s*{_LENGTH}(\s+{_LENGTH}){{3}}\s*$",
        default="0% 0% 100% 100%",
    ),
    "crop": _choice("Crop the result to the subject.", BOOLEAN, "false"),
    "crop_margin": _text(
        "Margin around the cropped subject: 1, 2 or 4 values (CSS order), px or %.",
        pattern=rf"^\s*({_LENGTH}|{_LENGTH}\s+{_LENGTH}|{_LENGTH}(\s+{_LENGTH}){{3}})\s*$",
        default="0",
    ),
    "scale": _text(
        "The subject's size on the canvas: original, or 10% to 100%.",
        pattern=rf"^(original|{_PERCENT_WORD})$",
        default="original",
    ),
    "position": _text(
        "Where the subject sits: original, center, or one or two percentages (x y).",
        pattern=rf"^(original|center|centre|{_PERCENT_WORD}(\s+{_PERCENT_WORD})?)$",
        default="original",
    ),
    "canvas": _text(
        "This server's extra: the canvas, original, square, an aspect like 4:5 or 16:9, or "
        "pixels like 1200x800 (at most 20000 a side).",
        pattern=r"^(original|square|\d{1,3}:\d{1,3}|\d{1,6}x\d{1,6})$",
        default="original",
    ),
    "bg_color": _text(
        "A background colour: hex (#rgb, #rrggbb, #rrggbbaa, '#' optional), a CSS colour "
        "name, or transparent.",
        pattern=r"^(#?([0-9a-fA-F]{3}|[0-9a-fA-F]{6}|[0-9a-fA-F]{8})|[A-Za-z]+)$",
        default="transparent",
        examples=["white", "#1e90ff", "81d4fa80"],
    ),
    "semitransparency": _choice(
        "Keep see-through parts (glass, hair) partly transparent.", BOOLEAN, "true"
    ),
    "add_shadow": _choice("remove.bg's older switch for a drop shadow.", BOOLEAN, "false"),
    "shadow_type": _choice(
        "A shadow under the subject: drop, 3D or car (each a drop shadow with its own "
        "defaults), or none.",
        ["none", *_spelled(SHADOW_TYPES)],
        "none",
    ),
    "shadow_opacity": _text("The shadow's opacity, 0 to 100 %.", pattern=rf"^{_PERCENT}$"),
    "shadow_direction": _text(
        "This server's extra: the shadow's direction in degrees (0 right, 90 down), -360 to 360.",
        pattern=rf"^-?{_NUMBER}\s*(deg)?$",
    ),
    "shadow_softness": _text(
        "This server's extra: the shadow's blur, 0 to 50 % of the subject's longer side.",
        pattern=rf"^{_PERCENT}$",
    ),
    "shadow_distance": _text(
        "This server's extra: how far the shadow falls, 0 to 100 % of the subject's longer side.",
        pattern=rf"^{_PERCENT}$",
    ),
}

MATTING_FIELD = _choice(
    "This server's extra: alpha matting for fine edges (hair, fur); auto decides per photo.",
    sorted(MATTING),
    "auto",
)
BINARY: Schema = {
    "type": "string",
    "format": "binary",
    "contentMediaType": "application/octet-stream",
}
IMAGE_FIELDS: dict[str, Schema] = {
    "image_file": {**BINARY, "description": "The photo, as a file (multipart only)."},
    "image_file_b64": {
        "type": "string",
        "description": "The photo, base64-encoded (a data: URL's header is skipped).",
    },
    "image_url": {
        "type": "string",
        "description": "The photo's URL, fetched by the server when the operator turns on "
        "API_IMAGE_URLS (private addresses are never fetched).",
    },
}
BACKGROUND_FIELDS: dict[str, Schema] = {
    "bg_image_file": {**BINARY, "description": "A background picture, as a file."},
    "bg_image_file_b64": {"type": "string", "description": "A background picture, base64."},
    "bg_image_url": {"type": "string", "description": "A background picture's URL."},
}
HINTS_FIELD: Schema = {
    **BINARY,
    "description": "This server's extra: a hint map, an 8-bit grey PNG the photo's size "
    "(white keep, black remove, mid-grey leave to the network).",
}


def _fields(*parts: dict[str, Schema]) -> Schema:
    properties: dict[str, Schema] = {}
    for part in parts:
        properties.update(part)
    return {"type": "object", "properties": properties}


def _without_files(schema: Schema) -> Schema:
    properties = {
        name: value
        for name, value in schema["properties"].items()
        if value.get("format") != "binary"
    }
    return {**schema, "properties": properties}


REMOVEBG_FORM = _fields(
    IMAGE_FIELDS,
    BACKGROUND_FIELDS,
    RENDER_OPTIONS,
    {"matting": MATTING_FIELD, "hints_file": HINTS_FIELD},
)
RESULT_FORM = _fields(BACKGROUND_FIELDS, RENDER_OPTIONS, {"hints_file": HINTS_FIELD})
JOB_FORM = _fields(
    {
        "image_file": {
            "type": "array",
            "items": BINARY,
            "description": "The photos, as files: repeat the field for several (multipart only).",
        },
        "image_file_b64": IMAGE_FIELDS["image_file_b64"],
        "image_url": IMAGE_FIELDS["image_url"],
        "matting": MATTING_FIELD,
        "webhook_url": {
            "type": "string",
            "maxLength": 2048,
            "description": "Where to POST the job's final state, signed (see webhooks).",
        },
    },
    RENDER_OPTIONS,
)


def _nullable(schema: Schema) -> Schema:
    return {**schema, "type": [schema["type"], "null"]}


STRING: Schema = {"type": "string"}
TIME: Schema = {"type": "string", "format": "date-time"}
CREDITS = {
    "type": "string",
    "pattern": r"^\d+(\.\d+)?$",
    "description": f"Credits as a decimal: {PREVIEW_PIXELS / 1e6:g} MP or less cost 0.25, larger "
    f"results 1 per started {PIXELS_PER_CREDIT // 1_000_000} MP.",
}

SCHEMAS: dict[str, Schema] = {
    "Error": {
        "type": "object",
        "required": ["errors"],
        "properties": {
            "errors": {
                "type": "array",
                "minItems": 1,
                "items": {
                    "type": "object",
                    "required": ["title", "code"],
                    "properties": {
                        "title": {"type": "string", "description": "What went wrong, for people."},
                        "code": {
                            "type": "string",
                            "description": "For programs, e.g. auth_failed, invalid_parameters, "
                            "missing_source, file_too_large, invalid_file_type, "
                            "insufficient_credits, rate_limit_exceeded, server_busy, not_found.",
                        },
                    },
                },
            }
        },
    },
    "RemoveBgResult": {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "object",
                "required": ["result_b64", "foreground_top", "foreground_left"]
                + ["foreground_width", "foreground_height"],
                "properties": {
                    "result_b64": {"type": "string", "contentEncoding": "base64"},
                    "foreground_top": {"type": "integer", "minimum": 0},
                    "foreground_left": {"type": "integer", "minimum": 0},
                    "foreground_width": {"type": "integer", "minimum": 1},
                    "foreground_height": {"type": "integer", "minimum": 1},
                },
            }
        },
    },
    "Account": {
        "type": "object",
        "required": ["data"],
        "properties": {
            "data": {
                "type": "object",
                "required": ["attributes"],
                "properties": {
                    "attributes": {
                        "type": "object",
                        "required": ["credits", "api", "bgremover"],
                        "properties": {
                            "credits": {
                                "type": "object",
                                "description": "total and subscription: credits left this "
                                "month (null: no quota).",
                                "required": ["total", "subscription", "payg", "enterprise"],
                                "properties": {
                                    "total": {"type": ["number", "null"]},
                                    "subscription": {"type": ["number", "null"]},
                                    "payg": {"type": "number"},
                                    "enterprise": {"type": "number"},
                                },
                            },
                            "api": {
                                "type": "object",
                                "required": ["free_calls", "sizes"],
                                "properties": {
                                    "free_calls": {"type": "integer"},
                                    "sizes": {"type": "string"},
                                },
                            },
                            "bgremover": {
                                "type": "object",
                                "required": ["key", "name", "month", "credits_used", "images"]
                                + ["monthly_quota"],
                                "properties": {
                                    "key": {"type": "string", "description": "The key's prefix."},
                                    "name": STRING,
                                    "month": {"type": "string", "pattern": r"^\d{4}-\d{2}$"},
                                    "credits_used": {"type": "number", "minimum": 0},
                                    "images": {"type": "integer", "minimum": 0},
                                    "monthly_quota": {"type": ["number", "null"]},
                                },
                            },
                        },
                    }
                },
            }
        },
    },
    "Job": {
        "type": "object",
        "required": ["id", "status", "stage", "stage_label", "percent", "finished", "error"]
        + ["name", "width", "height", "matting", "created_at", "finished_at", "expires_at"]
        + ["credits_charged", "webhook_url", "options", "urls"],
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": list(Job.Status.values)},
            "stage": STRING,
            "stage_label": STRING,
            "percent": {"type": "integer", "minimum": 0, "maximum": 100},
            "finished": {"type": "boolean"},
            "error": _nullable(STRING),
            "name": STRING,
            "width": {"type": "integer", "minimum": 1},
            "height": {"type": "integer", "minimum": 1},
            "matting": {"type": "string", "enum": sorted(MATTING)},
            "created_at": TIME,
            "finished_at": _nullable(TIME),
            "expires_at": _nullable(TIME),
            "credits_charged": _nullable(CREDITS),
            "webhook_url": _nullable(STRING),
            "options": {
                "type": "object",
                "additionalProperties": STRING,
                "description": "The render options sent with the submission: the defaults of "
                "its result downloads.",
            },
            "urls": {
                "type": "object",
                "required": ["self", "result", "socket"],
                "properties": {
                    "self": {"type": "string", "format": "uri"},
                    "result": {
                        "type": ["string", "null"],
                        "format": "uri",
                        "description": "Null until the job is done.",
                    },
                    "socket": {
                        "type": "string",
                        "format": "uri",
                        "description": "The job's progress websocket (send the key in the "
                        "handshake's X-Api-Key header): the job as here, once now and on each "
                        "change; closes after the final state.",
                    },
                },
            },
        },
    },
    "JobOne": {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"$ref": "#/components/schemas/Job"}},
    },
    "JobList": {
        "type": "object",
        "required": ["data"],
        "properties": {"data": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}}},
    },
    "JobPage": {
        "type": "object",
        "required": ["data", "meta"],
        "properties": {
            "data": {"type": "array", "items": {"$ref": "#/components/schemas/Job"}},
            "meta": {
                "type": "object",
                "required": ["limit", "next"],
                "properties": {
                    "limit": {"type": "integer", "minimum": 1, "maximum": 100},
                    "next": {
                        "type": ["string", "null"],
                        "format": "uri",
                        "description": "The next page, null on the last.",
                    },
                },
            },
        },
    },
    "JobFinished": {
        "type": "object",
        "required": ["event", "data"],
        "properties": {
            "event": {"const": "job.finished"},
            "data": {"$ref": "#/components/schemas/Job"},
        },
    },
    "RemoveBgForm": REMOVEBG_FORM,
    "RemoveBgFields": _without_files(REMOVEBG_FORM),
    "JobForm": JOB_FORM,
    "JobFields": _without_files(JOB_FORM),
    "ResultForm": RESULT_FORM,
    "ResultFields": _without_files(RESULT_FORM),
}


def _header(description: str, schema: Schema, required: bool = False) -> Schema:
    return {"description": description, "required": required, "schema": schema}


INTEGER: Schema = {"type": "string", "pattern": r"^\d+$"}
HEADERS: dict[str, Schema] = {
    "X-Type": _header("What the photo shows, as the call said (other for auto).", STRING, True),
    "X-Width": _header("The result's width in pixels.", INTEGER, True),
    "X-Height": _header("The result's height in pixels.", INTEGER, True),
    "X-Foreground-Top": _header("The subject's box on the result: top.", INTEGER, True),
    "X-Foreground-Left": _header("The subject's box: left.", INTEGER, True),
    "X-Foreground-Width": _header("The subject's box: width.", INTEGER, True),
    "X-Foreground-Height": _header("The subject's box: height.", INTEGER, True),
    "X-Credits-Charged": _header(
        "Credits this call charged (a job's later download: what a larger size adds, else 0).",
        CREDITS,
        True,
    ),
    "X-RateLimit-Limit": _header(
        "Images the key may process in the window (absent: no limit).", INTEGER
    ),
    "X-RateLimit-Remaining": _header("Images left in the window.", INTEGER),
    "X-RateLimit-Reset": _header("Unix time the window ends.", INTEGER),
    "Location": _header(
        "The job's URL (when one image was submitted).", {"type": "string", "format": "uri"}
    ),
    "Retry-After": _header("Seconds to wait before trying again.", INTEGER),
}
RATE_HEADERS = ("X-RateLimit-Limit", "X-RateLimit-Remaining", "X-RateLimit-Reset")
RESULT_HEADERS = (
    "X-Type",
    "X-Width",
    "X-Height",
    "X-Foreground-Top",
    "X-Foreground-Left",
    "X-Foreground-Width",
    "X-Foreground-Height",
    "X-Credits-Charged",
    *RATE_HEADERS,
)

SECURITY_SCHEMES: dict[str, Schema] = {
    "ApiKey": {
        "type": "apiKey",
        "in": "header",
        "name": "X-Api-Key",
        "description": "remove.bg's header; an operator creates keys with "
        "`python manage.py apikey create NAME`.",
    },
    "Bearer": {
        "type": "http",
        "scheme": "bearer",
        "description": "The same key as a bearer token.",
    },
}
