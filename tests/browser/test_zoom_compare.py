"""The Compare tool's divider and its captions: zoomed in, the original still shows exactly left
of the divider; with a brush or mark tool on, the picture is all result and is not captioned
"Original | Result"."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.pages import FOX, open_editor, photo, upload_with_picker

pytestmark = pytest.mark.browser

# Which layer the picture shows at a fraction of its width, halfway down. Hit testing follows
# clip-path, so the original's canvas answers only where it is drawn.
LAYER_AT = """(fraction) => {
  const box = document.getElementById("compare").getBoundingClientRect();
  const x = box.left + box.width * fraction;
  const y = box.top + box.height / 2;
  return document.elementFromPoint(x, y).id;
}"""


def test_the_divider_still_splits_original_and_result_when_zoomed_in(
    page: Page, eval_dir: Path
) -> None:
    upload_with_picker(page, [photo(eval_dir, FOX)])
    open_editor(page, f"{FOX}.jpg")
    expect(page.get_by_role("radio", name="Compare")).to_be_checked()
    for _ in range(3):
        page.get_by_role("button", name="Zoom in").click()
    expect(page.locator("#compare")).to_have_class("compare checkerboard is-zoomed")

    divider = page.get_by_role("slider", name="Compare original (left) and result (right)")
    divider.focus()
    for _ in range(30):
        page.keyboard.press("ArrowLeft")
    expect(divider).to_have_value("20")

    assert page.evaluate(LAYER_AT, 0.1) == "before-canvas", "no original left of the divider"
    assert page.evaluate(LAYER_AT, 0.3) == "after-canvas", "the original spills past the divider"
    page.keyboard.press("End")
    assert page.evaluate(LAYER_AT, 0.95) == "before-canvas"
    page.keyboard.press("Home")
    assert page.evaluate(LAYER_AT, 0.05) == "after-canvas"

    page.get_by_role("button", name="Fit").click()
    divider.focus()
    for _ in range(50):
        page.keyboard.press("ArrowRight")
    assert page.evaluate(LAYER_AT, 0.45) == "before-canvas"
    assert page.evaluate(LAYER_AT, 0.55) == "after-canvas"


def test_the_original_and_result_captions_show_only_with_the_compare_tool(
    page: Page, eval_dir: Path
) -> None:
    upload_with_picker(page, [photo(eval_dir, FOX)])
    open_editor(page, f"{FOX}.jpg")
    captions = page.locator(".compare-labels")
    expect(captions).to_be_visible()
    for tool in ["Keep", "Remove", "Erase", "Restore"]:
        page.locator("#refine-tools .refine-modes label", has_text=tool).click()
        expect(page.locator("#compare")).to_have_class(re.compile(r"\bis-editing\b"))
        expect(captions).to_be_hidden()
    page.keyboard.press("Escape")  # back to Compare
    expect(page.get_by_role("radio", name="Compare")).to_be_checked()
    expect(captions).to_be_visible()
