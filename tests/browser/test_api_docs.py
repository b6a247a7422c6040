"""/api/docs in a real Chromium: it renders under the site's CSP with no console error, no
CSP violation and no request leaving the server; axe-core finds nothing on a laptop or a
phone; the table of contents leads to each operation; the footer links to it."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from api.openapi import document
from tests.browser.conftest import ARTIFACTS, DESKTOP, PHONE, device_page
from tests.browser.test_accessibility import AXE_SOURCE, RUN_AXE

pytestmark = pytest.mark.browser

# Collected by the page itself (an init script, which the CSP does not govern).
WATCH_CSP = """
window.__cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.__cspViolations.push(event.violatedDirective + " " + event.blockedURI);
});
"""


def open_docs(page: Page, server_url: str) -> tuple[list[str], list[str]]:
    errors: list[str] = []
    outside: list[str] = []
    page.add_init_script(WATCH_CSP)
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    page.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    page.on(
        "request",
        lambda request: (
            None if request.url.startswith(server_url + "/") else outside.append(request.url)
        ),
    )
    page.goto("/api/docs")
    page.wait_for_load_state("load")
    return errors, outside


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["laptop", "phone"])
def test_docs_page_renders_cleanly_and_accessibly(
    browser: Browser, server_url: str, device: dict
) -> None:
    page = device_page(browser, server_url, device)
    try:
        errors, outside = open_docs(page, server_url)
        expect(page.get_by_role("heading", level=1)).to_contain_text("bgremover HTTP API")
        # The stylesheet applied: the table of contents is laid out as a card.
        assert (
            page.evaluate("getComputedStyle(document.querySelector('.api-toc')).borderStyle")
            == "solid"
        )
        # Nothing wider than the screen: long names and patterns wrap.
        assert page.evaluate("document.documentElement.scrollWidth <= window.innerWidth")
        page.screenshot(path=str(ARTIFACTS / f"api-docs-{device['viewport']['width']}.png"))
        page.evaluate(AXE_SOURCE)
        violations = page.evaluate(RUN_AXE)
        assert violations == [], violations
        assert page.evaluate("window.__cspViolations") == []
        assert errors == []
        assert outside == []
    finally:
        page.context.close()


def test_the_contents_lead_to_each_operation(page: Page, server_url: str) -> None:
    errors, _ = open_docs(page, server_url)
    paths = document()["paths"]
    operations = sum(1 for item in paths.values() for name in item if name != "parameters")
    links = page.locator(".api-toc a[href^='#'] .method")
    expect(links).to_have_count(operations)
    page.locator(".api-toc a[href='#removeBackground']").click()
    section = page.locator("#removeBackground")
    expect(section).to_be_in_viewport()
    expect(section.get_by_text("image_file_b64", exact=True).first).to_be_visible()
    assert page.url.endswith("#removeBackground")
    page.goto("/")
    page.locator(".site-footer").get_by_role("link", name="HTTP API").click()
    expect(page).to_have_url(f"{server_url}/api/docs")
    assert errors == []


# The narrowest phones in use: 320 px wide.
NARROW_PHONE = {"viewport": {"width": 320, "height": 640}, "has_touch": True, "is_mobile": True}
TABLES_STICKING_OUT = """
() => [...document.querySelectorAll(".api-table")]
  .filter((table) => {
    const box = table.parentElement.closest("section, .card").getBoundingClientRect();
    const own = table.getBoundingClientRect();
    return own.right > Math.min(box.right, window.innerWidth) + 0.5;
  })
  .map((table) => `${table.closest("[id]").id}: ${Math.round(table.getBoundingClientRect().right)}`)
"""


def test_the_tables_fit_the_narrowest_phones(browser: Browser, server_url: str) -> None:
    page = device_page(browser, server_url, NARROW_PHONE)
    try:
        open_docs(page, server_url)
        assert page.evaluate("document.documentElement.scrollWidth") <= 320
        assert page.evaluate(TABLES_STICKING_OUT) == []
        page.locator("#post-jobFinished .api-table").first.scroll_into_view_if_needed()
        page.screenshot(path=str(ARTIFACTS / "api-docs-320.png"))
    finally:
        page.context.close()
