"""``GET /api/docs``: the document rendered for people on the live server, under the site's
CSP, loading nothing from elsewhere."""

from __future__ import annotations

import re
from html.parser import HTMLParser

import pytest

from api.openapi import document
from tests.api.http import request

pytestmark = pytest.mark.browser  # a live server, like the browser tests


class _Links(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.urls: list[tuple[str, str, str]] = []
        self.ids: set[str] = set()
        self.inline: list[str] = []

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        named = dict(attrs)
        for name in ("src", "href", "action"):
            if named.get(name):
                self.urls.append((tag, name, named[name] or ""))
        if named.get("id"):
            self.ids.add(named["id"] or "")
        if "style" in named or any(name.startswith("on") for name in named):
            self.inline.append(tag)
        if tag in ("script", "style") and not named.get("src"):
            self.inline.append(tag)


def test_docs_page_renders_every_operation_under_the_csp(api_url: str) -> None:
    answer = request(f"{api_url}/api/docs")
    assert answer.status == 200
    assert answer.headers["Content-Type"].startswith("text/html")
    policy = answer.headers["Content-Security-Policy"]
    assert "script-src 'self'" in policy and "style-src 'self'" in policy
    html = answer.body.decode()
    parser = _Links()
    parser.feed(html)
    assert parser.inline == []
    for tag, attribute, url in parser.urls:
        if re.match(r"(?i)^[a-z][a-z0-9+.-]*:|^//", url):
            assert url.startswith(api_url + "/"), (tag, attribute, url)
    for _, _, url in parser.urls:
        if url.startswith("#"):
            assert url[1:] in parser.ids, f"{url} points nowhere"
    for path, item in document()["paths"].items():
        assert path in html
        for method, operation in item.items():
            if method != "parameters":
                assert operation["operationId"] in parser.ids
    for field in ("shadow_direction", "hints_file", "canvas", "type_level", "X-Credits-Charged"):
        assert f"<code>{field}</code>" in html
    assert 'href="/api/openapi.json"' in html
