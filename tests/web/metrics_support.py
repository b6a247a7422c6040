"""Scraping /metrics in the web tests: the token they set, and the scraped families by name."""

from __future__ import annotations

from django.test import Client
from prometheus_client.parser import text_string_to_metric_families

TOKEN = "s3cret-metrics-token"


def scrape(client: Client, token: str = TOKEN) -> dict[str, object]:
    response = client.get("/metrics", HTTP_AUTHORIZATION=f"Bearer {token}")
    assert response.status_code == 200, response.content
    assert response["Content-Type"].startswith("text/plain; version=")
    return {family.name: family for family in text_string_to_metric_families(response.text)}


def samples(family: object, name: str | None = None) -> dict[tuple, float]:
    return {
        tuple(sorted(sample.labels.items())): sample.value
        for sample in family.samples  # type: ignore[attr-defined]
        if name is None or sample.name == name
    }
