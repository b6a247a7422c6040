"""Checking a live answer against the OpenAPI document: its status is documented for the
operation, its Content-Type is one the status lists, each documented header is present when
required and matches its schema, and a JSON body matches the schema (jsonschema, draft
2020-12, as OpenAPI 3.1 uses)."""

from __future__ import annotations

import json
from typing import Any

from jsonschema import Draft202012Validator, FormatChecker
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

from api.openapi import document
from tests.api.http import Answer

DOC_URI = "urn:bgremover:openapi"


def _registry(doc: dict[str, Any]) -> Registry:
    return Registry().with_resource(DOC_URI, Resource(doc, DRAFT202012))


class Contract:
    def __init__(self) -> None:
        self.doc = document()
        self.registry = _registry(self.doc)

    def follow(self, node: dict[str, Any]) -> dict[str, Any]:
        while "$ref" in node:
            target: Any = self.doc
            for step in node["$ref"].removeprefix("#/").split("/"):
                target = target[step]
            node = target
        return node

    def validate(self, instance: Any, schema: dict[str, Any]) -> None:
        """Raise jsonschema.ValidationError when ``instance`` does not match ``schema`` (its
        references resolved against the document)."""
        wrapped = {"$ref": DOC_URI + "#/$defs/target", "$defs": {}}
        # The schema is placed in a copy of the document so its "#/components/..." refs resolve.
        doc = {**self.doc, "$defs": {"target": schema}}
        registry = _registry(doc)
        Draft202012Validator(wrapped, registry=registry, format_checker=FormatChecker()).validate(
            instance
        )

    def response(self, path: str, method: str, status: int) -> dict[str, Any]:
        operation = self.doc["paths"][path][method.lower()]
        responses = operation["responses"]
        assert str(status) in responses, (
            f"{method} {path} answered {status}, which the document does not list "
            f"({', '.join(responses)})"
        )
        return self.follow(responses[str(status)])

    def check(self, answer: Answer, path: str, method: str) -> dict[str, Any]:
        """Assert ``answer`` conforms to the document; return the documented response."""
        documented = self.response(path, method, answer.status)
        content = documented.get("content", {})
        if content:
            media_type = (answer.headers.get("Content-Type") or "").split(";")[0].strip()
            assert media_type in content, (answer.status, media_type, list(content))
            if media_type == "application/json":
                self.validate(json.loads(answer.body), content[media_type]["schema"])
        else:
            assert answer.body == b"", answer.body[:200]
        for name, header in documented.get("headers", {}).items():
            header = self.follow(header)
            value = answer.headers.get(name)
            if value is None:
                assert not header.get("required"), f"{answer.status} lacks header {name}"
                continue
            self.validate(value, header["schema"])
        return documented


CONTRACT = Contract()
