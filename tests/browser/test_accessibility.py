"""Accessibility: axe-core finds nothing on the upload page, the gallery and the editor, on a
laptop and a phone, light and dark; and the whole journey (upload, editor, background,
download, delete) works with the keyboard alone.

axe-core comes from the axe-playwright-python package (its bundled axe.min.js), so no CDN
is needed; the script is evaluated in the page, which the Content-Security-Policy allows
(it governs the page's own scripts, not the test driver's)."""

from __future__ import annotations

import re
from importlib.resources import files
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, device_page
from tests.browser.pages import (
    DOG,
    FOX,
    card,
    photo,
    wait_done,
    wait_for_chooser,
    watch_file_choosers,
)

pytestmark = pytest.mark.browser

AXE_SOURCE = files("axe_playwright_python").joinpath("axe.min.js").read_text()
RUN_AXE = """
async () => {
  const results = await axe.run(document, { resultTypes: ["violations"] });
  return results.violations.map((v) => ({
    id: v.id, impact: v.impact, help: v.help,
    nodes: v.nodes.map((n) => n.target.join(" ") + " — " + n.failureSummary).slice(0, 5),
  }));
}
"""


def axe_violations(page: Page) -> list[dict]:
    page.evaluate(AXE_SOURCE)
    return page.evaluate(RUN_AXE)


def assert_no_violations(page: Page, where: str) -> None:
    violations = axe_violations(page)
    assert violations == [], f"{where}: " + "\n".join(
        f"{v['id']} ({v['impact']}): {v['help']}\n  " + "\n  ".join(v["nodes"]) for v in violations
    )


@pytest.mark.parametrize(
    ("device", "scheme"),
    [(DESKTOP, "light"), (PHONE, "light"), (DESKTOP, "dark"), (PHONE, "dark")],
    ids=["desktop", "phone", "desktop-dark", "phone-dark"],
)
def test_no_axe_violations_on_any_page(
    browser: Browser, server_url: str, eval_dir: Path, device: dict, scheme: str
) -> None:
    page = device_page(browser, server_url, device, color_scheme=scheme)
    try:
        page.goto("/")
        expect(page.locator("#dropzone")).to_have_attribute("data-ready", "true")
        assert_no_violations(page, "empty upload page")
        not_an_image = {"name": "notes.png", "mimeType": "image/png", "buffer": b"text\n"}
        page.set_input_files("#file-input", [photo(eval_dir, DOG), not_an_image])
        expect(card(page, "notes.png")).to_have_attribute("data-status", "rejected")
        wait_done(page, f"{DOG}.jpg")
        assert_no_violations(page, "upload page with a result and a refusal")

        page.goto("/gallery/")
        expect(page.locator(".gallery-card")).to_have_count(1)
        assert_no_violations(page, "gallery")

        page.locator(".gallery-card").get_by_role(
            "link", name=f"Open {DOG}.jpg", exact=True
        ).click()
        expect(page.locator("#compare")).to_have_attribute("data-ready", "true")
        assert_no_violations(page, "editor")
        page.get_by_role("radio", name="Blurred original").check()
        page.locator("#crop-input").check()
        assert_no_violations(page, "editor with blur and crop")
        page.get_by_role("button", name="Delete this image").click()
        expect(page.locator("#toast")).to_be_visible()
        assert_no_violations(page, "editor with the undo toast")
    finally:
        page.context.close()


def focused(target: Locator) -> bool:
    return target.evaluate("(element) => element === document.activeElement")


def tab_to(page: Page, target: Locator, limit: int = 60) -> None:
    """Press Tab until ``target`` has the focus, as a keyboard user would."""
    for _ in range(limit):
        if focused(target):
            return
        page.keyboard.press("Tab")
    raise AssertionError(f"Tab never reached {target}")


def test_the_whole_journey_by_keyboard(page: Page, eval_dir: Path) -> None:
    choosers = watch_file_choosers(page)
    page.goto("/")
    expect(page.locator("#dropzone")).to_have_attribute("data-ready", "true")
    tab_to(page, page.locator("#dropzone"))
    page.keyboard.press("Enter")
    wait_for_chooser(page, choosers).set_files([photo(eval_dir, FOX)])
    done = wait_done(page, f"{FOX}.jpg")

    open_link = done.get_by_role("link", name=f"Open editor for {FOX}.jpg")
    tab_to(page, open_link)
    page.keyboard.press("Enter")
    expect(page.locator("#compare")).to_have_attribute("data-ready", "true")
    image_url = page.url

    # The divider moves with the arrow keys.
    divider = page.get_by_role("slider", name="Compare original (left) and result (right)")
    tab_to(page, divider)
    page.keyboard.press("ArrowLeft")
    expect(divider).not_to_have_value("50")

    # Backgrounds are one radio group: Tab into it, arrows choose.
    transparent = page.get_by_role("radio", name="Transparent")
    tab_to(page, transparent)
    page.keyboard.press("ArrowRight")
    white = page.get_by_role("radio", name="White")
    expect(white).to_be_checked()
    expect(white).to_be_focused()
    assert (
        page.evaluate(
            """() => getComputedStyle(document.activeElement.nextElementSibling).outlineStyle"""
        )
        != "none"
    ), "the focused swatch shows no focus ring"

    # Crop with Space, then the margin with the arrows.
    crop = page.get_by_role("checkbox", name="Crop to the subject")
    tab_to(page, crop)
    page.keyboard.press("Space")
    expect(crop).to_be_checked()
    page.keyboard.press("Tab")
    margin = page.get_by_role("slider", name="Margin")
    expect(margin).to_be_focused()
    page.keyboard.press("ArrowRight")
    expect(margin).to_have_value("6")

    download_button = page.get_by_role("button", name="Download")
    tab_to(page, download_button)
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    assert re.search(r"-color\.png$", info.value.suggested_filename)

    delete = page.get_by_role("button", name="Delete this image")
    tab_to(page, delete)
    page.keyboard.press("Enter")
    undo = page.get_by_role("button", name="Undo")
    expect(undo).to_be_focused()
    page.keyboard.press("Space")  # changed my mind
    expect(delete).to_be_focused()
    page.keyboard.press("Enter")
    expect(page).to_have_url(re.compile(r"/gallery/$"), timeout=15_000)
    expect(page.get_by_role("heading", name="No images yet")).to_be_visible()
    assert page.request.get(image_url).status == 404
