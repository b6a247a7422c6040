"""The OpenAPI document (api.openapi) made ready for the server-rendered page at /api/docs:
references followed, each operation's parameters, bodies and answers flattened into rows
a template can show, and the descriptions' small Markdown (``code``, **bold**) split
into parts the template escapes itself (no HTML is built here)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from http import HTTPStatus
from typing import Any

from api.openapi import document

_INLINE = re.compile(r"`([^`]+)`|\*\*([^*]+)\*\*")
METHODS = ("get", "post", "put", "patch", "delete")


@dataclass(frozen=True)
class Part:
    text: str
    kind: str = "text"  # text, code or strong


def parts(text: str) -> list[Part]:
    """``text`` cut into plain, ``code`` and **strong** parts."""
    found: list[Part] = []
    position = 0
    for match in _INLINE.finditer(text):
        if match.start() > position:
            found.append(Part(text[position : match.start()]))
        found.append(Part(match[1], "code") if match[1] else Part(match[2], "strong"))
        position = match.end()
    if position < len(text):
        found.append(Part(text[position:]))
    return found


def paragraphs(text: str) -> list[list[Part]]:
    return [parts(" ".join(block.split())) for block in text.split("\n\n") if block.strip()]


@dataclass
class Row:
    """One field, parameter or header: its name, where it goes, its type and what it means."""

    name: str
    kind: str
    required: bool
    description: list[Part]
    values: list[str] = field(default_factory=list)  # an enum's values
    pattern: str = ""
    default: str = ""
    where: str = ""
    link: str = ""  # the anchor of a schema shown on the page, for a type that is one


@dataclass
class Body:
    media_type: str
    rows: list[Row]
    schema_name: str = ""


@dataclass
class Answer:
    status: str
    reason: str
    description: list[Part]
    media_types: list[str]
    headers: list[Row]
    schema_names: list[str]


@dataclass
class Operation:
    anchor: str
    method: str
    path: str
    summary: str
    description: list[list[Part]]
    public: bool
    parameters: list[Row]
    bodies: list[Body]
    answers: list[Answer]


@dataclass
class Tag:
    name: str
    description: list[list[Part]]
    operations: list[Operation]


@dataclass
class SchemaSection:
    name: str
    anchor: str
    rows: list[Row]


@dataclass
class Page:
    title: str
    version: str
    description: list[list[Part]]
    tags: list[Tag]
    webhooks: list[Operation]
    schemas: list[SchemaSection]
    security: list[Row]
    headers: list[Row]


class _Resolver:
    def __init__(self, doc: dict[str, Any]) -> None:
        self.doc = doc

    def follow(self, node: dict[str, Any]) -> tuple[dict[str, Any], str]:
        """``node`` with its $ref followed, and the referenced name ('' for none)."""
        name = ""
        while "$ref" in node:
            path = node["$ref"].removeprefix("#/").split("/")
            name = path[-1]
            target: Any = self.doc
            for step in path:
                target = target[step]
            node = target
        return node, name

    def kind(self, schema: dict[str, Any]) -> str:
        schema, name = self.follow(schema)
        if name:
            return name
        kind = schema.get("type", "any")
        if isinstance(kind, list):
            kind = " or ".join(kind)
        if schema.get("format") == "binary":
            return "file"
        if kind == "array":
            return f"array of {self.kind(schema.get('items', {}))}"
        if schema.get("format"):
            return f"{kind} ({schema['format']})"
        return kind

    def row(self, name: str, schema: dict[str, Any], required: bool, where: str = "") -> Row:
        described, _ = self.follow(schema)
        kind = self.kind(schema)
        linked = kind.removeprefix("array of ")
        return Row(
            name=name,
            kind=kind,
            link=f"schema-{linked}" if linked in SHOWN_SCHEMAS else "",
            required=required,
            description=parts(described.get("description", "")),
            values=[str(value) for value in described.get("enum", [])],
            pattern=described.get("pattern", ""),
            default=str(described.get("default", "")),
            where=where,
        )

    def rows(self, schema: dict[str, Any]) -> list[Row]:
        schema, _ = self.follow(schema)
        required = set(schema.get("required", []))
        return [
            self.row(name, prop, name in required)
            for name, prop in schema.get("properties", {}).items()
        ]

    def parameter(self, parameter: dict[str, Any]) -> Row:
        parameter, _ = self.follow(parameter)
        row = self.row(
            parameter["name"],
            parameter["schema"],
            parameter.get("required", False),
            parameter["in"],
        )
        if parameter.get("description"):
            row.description = parts(parameter["description"])
        return row

    def header(self, name: str, header: dict[str, Any]) -> Row:
        header, _ = self.follow(header)
        row = self.row(name, header.get("schema", {}), header.get("required", False))
        row.description = parts(header.get("description", ""))
        return row

    def answer(self, status: str, response: dict[str, Any]) -> Answer:
        response, _ = self.follow(response)
        try:
            reason = HTTPStatus(int(status)).phrase
        except ValueError:
            reason = "Success"
        content = response.get("content", {})
        names = [self.follow(media.get("schema", {}))[1] for media in content.values()]
        headers = []
        for name, header in response.get("headers", {}).items():
            headers.append(self.header(name, header))
        return Answer(
            status=status,
            reason=reason,
            description=parts(response.get("description", "")),
            media_types=list(content),
            headers=headers,
            schema_names=[name for name in dict.fromkeys(names) if name],
        )

    def operation(self, path: str, method: str, item: dict[str, Any]) -> Operation:
        operation = item[method]
        parameters = [*item.get("parameters", []), *operation.get("parameters", [])]
        bodies = []
        for media_type, media in operation.get("requestBody", {}).get("content", {}).items():
            bodies.append(
                Body(media_type, self.rows(media["schema"]), self.follow(media["schema"])[1])
            )
        anchor = operation.get("operationId") or f"{method}-{path}"
        return Operation(
            anchor=re.sub(r"[^A-Za-z0-9-]+", "-", anchor).strip("-"),
            method=method.upper(),
            path=path,
            summary=operation.get("summary", ""),
            description=paragraphs(operation.get("description", "")),
            public=operation.get("security") == [],
            parameters=[self.parameter(parameter) for parameter in parameters],
            bodies=bodies,
            answers=[
                self.answer(status, response)
                for status, response in operation.get("responses", {}).items()
            ],
        )


# The JSON answers shown in full under "Schemas" (the forms are shown with each operation).
SHOWN_SCHEMAS = (
    "Error",
    "RemoveBgResult",
    "Account",
    "Job",
    "JobOne",
    "JobPage",
    "JobList",
    "JobFinished",
)


def page() -> Page:
    """Everything /api/docs shows, in the document's order."""
    doc = document()
    resolver = _Resolver(doc)
    by_tag: dict[str, list[Operation]] = {tag["name"]: [] for tag in doc.get("tags", [])}
    described = {tag["name"]: tag.get("description", "") for tag in doc.get("tags", [])}
    for path, item in doc["paths"].items():
        for method in METHODS:
            if method in item:
                operation = resolver.operation(path, method, item)
                tag = (item[method].get("tags") or ["Other"])[0]
                by_tag.setdefault(tag, []).append(operation)
    webhooks = [
        resolver.operation(name, method, item)
        for name, item in doc.get("webhooks", {}).items()
        for method in METHODS
        if method in item
    ]
    schemas = doc["components"]["schemas"]
    security = [
        Row(
            name=name,
            kind=scheme["type"],
            required=False,
            description=parts(scheme.get("description", "")),
            where=scheme.get("in", "header") + (f" {scheme['name']}" if "name" in scheme else ""),
        )
        for name, scheme in doc["components"]["securitySchemes"].items()
    ]
    return Page(
        title=doc["info"]["title"],
        version=doc["info"]["version"],
        description=paragraphs(doc["info"].get("description", "")),
        tags=[
            Tag(name, paragraphs(described.get(name, "")), operations)
            for name, operations in by_tag.items()
        ],
        webhooks=webhooks,
        schemas=[
            SchemaSection(name, f"schema-{name}", resolver.rows(schemas[name]))
            for name in SHOWN_SCHEMAS
        ],
        security=security,
        headers=[
            resolver.header(name, header) for name, header in doc["components"]["headers"].items()
        ],
    )
