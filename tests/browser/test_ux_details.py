"""Small things a person notices in a real browser: which cursor a button shows, how numbers
are written, which controls a tool shows."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Locator, Page, Route, expect

from tests.browser.pages import DOG, FOX, open_editor, photo, upload_with_picker
from tests.browser.test_refine import TOP_EDGE, choose_tool, draw, saved

pytestmark = pytest.mark.browser


def cursor(target: Locator) -> str:
    return target.evaluate("(element) => getComputedStyle(element).cursor")


@pytest.fixture
def editor(page: Page, eval_dir: Path) -> Page:
    upload_with_picker(page, [photo(eval_dir, FOX)])
    open_editor(page, f"{FOX}.jpg")
    return page


def test_a_button_that_cannot_be_used_shows_not_allowed_and_only_one_at_work_shows_busy(
    editor: Page,
) -> None:
    page = editor
    # Nothing to undo or redo yet: the buttons are disabled, not busy.
    for name in ("Undo", "Redo"):
        button = page.get_by_role("button", name=name, exact=True)
        expect(button).to_be_disabled()
        assert cursor(button) == "not-allowed", name

    # A download being rendered is at work: the busy cursor, until it is done.
    held: list[Route] = []
    page.route("**/download/**", lambda route: held.append(route))
    download = page.locator("#download-button")
    assert cursor(download) == "pointer"
    download.click()
    expect(download).to_have_text("Rendering…")
    assert cursor(download) == "progress"
    with page.expect_download():
        held.pop().continue_()
    page.unroute("**/download/**")
    expect(download).to_have_text("Download")
    assert cursor(download) == "pointer"

    # Download ZIP with nothing selected cannot be used; while a ZIP is made it is at work.
    page.goto("/gallery/")
    zip_button = page.get_by_role("button", name="Download ZIP")
    expect(zip_button).to_be_disabled()
    assert cursor(zip_button) == "not-allowed"
    page.get_by_role("button", name="Select all").click()
    expect(zip_button).to_be_enabled()
    assert cursor(zip_button) == "pointer"
    page.route("**/images/zip/", lambda route: held.append(route))
    zip_button.click()
    expect(zip_button).to_be_disabled()
    assert cursor(zip_button) == "progress"
    page.get_by_role("button", name="Cancel").click()
    expect(zip_button).to_be_enabled()
    assert cursor(zip_button) == "pointer"


def test_the_parts_list_writes_percentages_as_the_rest_of_the_app(
    page: Page, eval_dir: Path
) -> None:
    upload_with_picker(page, [photo(eval_dir, DOG)])
    open_editor(page, f"{DOG}.jpg")
    choose_tool(page, "Restore")
    draw(page, [TOP_EDGE])  # a stray piece of grass: two parts
    saved(page, 1)
    labels = page.locator("#parts-list .part span")
    expect(labels).to_have_count(2)
    # "98%", like the job cards' and the margin's "5%", not "98 %".
    for text in labels.all_inner_texts():
        assert re.fullmatch(r"Part \d · \d+%", text), text


def test_the_brush_size_shows_only_for_the_brushes_and_keeps_its_room(editor: Page) -> None:
    page = editor
    size = page.get_by_role("slider", name="Brush")
    undo = page.get_by_role("button", name="Undo", exact=True)
    # Compare, the tool the editor opens with, has no brush.
    expect(page.get_by_role("radio", name="Compare", exact=True)).to_be_checked()
    expect(size).to_be_hidden()
    where = undo.bounding_box()
    for tool in ("Keep", "Remove", "Erase", "Restore"):
        page.get_by_role("radio", name=tool, exact=True).check()
        expect(size).to_be_visible()
        assert undo.bounding_box() == where, f"Undo moved when {tool} was chosen"
    # Escape from the focused slider goes back to Compare: the focus goes to its radio, not
    # to the page.
    size.focus()
    page.keyboard.press("Escape")
    compare = page.get_by_role("radio", name="Compare", exact=True)
    expect(compare).to_be_checked()
    expect(size).to_be_hidden()
    expect(compare).to_be_focused()
    assert undo.bounding_box() == where
