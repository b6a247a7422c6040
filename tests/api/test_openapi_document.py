"""The OpenAPI document itself: valid OpenAPI 3.1, every reference resolves, and each value
it lists for a field is one the server's own checks accept (so clients generated from it
are not refused), while a value outside a listed set is refused."""

from __future__ import annotations

from typing import Any

import pytest
from openapi_spec_validator import validate

from api.openapi import EXAMPLE_PNG_B64, document
from api.openapi_schemas import RENDER_OPTIONS
from api.options import RemoveBgForm
from api.request_data import RequestData


def test_the_document_is_valid_openapi_3_1() -> None:
    doc = document()
    assert doc["openapi"].startswith("3.1")
    assert doc["servers"] == [{"url": "/"}]
    validate(doc)


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        found = [node["$ref"]] if isinstance(node.get("$ref"), str) else []
        return found + [ref for value in node.values() for ref in _refs(value)]
    if isinstance(node, list):
        return [ref for value in node for ref in _refs(value)]
    return []


def test_every_reference_resolves() -> None:
    doc = document()
    refs = set(_refs(doc))
    assert refs
    for ref in refs:
        target: Any = doc
        for step in ref.removeprefix("#/").split("/"):
            assert step in target, f"{ref} does not resolve"
            target = target[step]


def test_every_operation_is_keyed_except_the_document() -> None:
    doc = document()
    schemes = doc["components"]["securitySchemes"]
    assert schemes["ApiKey"] == {**schemes["ApiKey"], "type": "apiKey", "in": "header"}
    assert schemes["ApiKey"]["name"] == "X-Api-Key"
    assert schemes["Bearer"]["scheme"] == "bearer"
    for path, item in doc["paths"].items():
        for method, operation in item.items():
            if method == "parameters":
                continue
            public = operation.get("security") == []
            assert public == (path == "/api/openapi.json"), (path, method)


def _accepted(fields: dict[str, str]) -> bool:
    return RemoveBgForm(RequestData(fields)).is_valid()


@pytest.mark.parametrize("name", [n for n, s in RENDER_OPTIONS.items() if "enum" in s])
def test_each_listed_value_is_accepted_and_others_refused(name: str) -> None:
    for value in RENDER_OPTIONS[name]["enum"]:
        assert _accepted({name: value}), (name, value)
    assert not _accepted({name: "not-a-listed-value"})


@pytest.mark.parametrize("name", [n for n, s in RENDER_OPTIONS.items() if "default" in s])
def test_each_default_is_accepted(name: str) -> None:
    assert _accepted({name: RENDER_OPTIONS[name]["default"]})


def test_the_example_photo_is_a_png() -> None:
    from base64 import b64decode

    assert b64decode(EXAMPLE_PNG_B64).startswith(b"\x89PNG\r\n\x1a\n")
