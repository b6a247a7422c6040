"""Keyboard details a person notices in the editor, the gallery and the upload page: the
control that has the focus is never hidden behind the parts of the page that stay on screen
(the download bar stuck to the bottom, and on phones the preview stuck to the top), and it is
not lost when the list of the cut-out's parts is redrawn, when Undo and Redo switch off, while
a download, a ZIP or a background is made or uploaded, or when Retry hides itself."""

from __future__ import annotations

from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, device_page
from tests.browser.pages import (
    FOX,
    open_editor,
    photo,
    upload_with_picker,
    wait_done,
    wait_for_chooser,
    watch_file_choosers,
)

pytestmark = pytest.mark.browser

# What covers the middle of the focused control, if anything does: the element on top there
# must be the control itself or part of it (its label, its swatch's face, its list item).
COVERED_BY = """() => {
  const element = document.activeElement;
  if (!element || element === document.body || element.id === "compare-range") return null;
  const box = element.getBoundingClientRect();
  const x = Math.min(innerWidth - 1, Math.max(0, box.left + box.width / 2));
  const y = Math.min(innerHeight - 1, Math.max(0, box.top + box.height / 2));
  const top = document.elementFromPoint(x, y);
  const own = element.closest("label, li") || element;
  if (!top || own.contains(top) || element.contains(top)) return null;
  const name = element.id || element.textContent.trim() || element.value;
  return `${name} is under ${top.id || top.className}`;
}"""


@pytest.mark.parametrize("device", [DESKTOP, PHONE], ids=["desktop", "phone"])
def test_the_focused_control_is_never_hidden_behind_the_sticky_bars(
    browser: Browser, server_url: str, eval_dir: Path, device: dict
) -> None:
    page: Page = device_page(browser, server_url, device)
    try:
        upload_with_picker(page, [photo(eval_dir, FOX)])
        open_editor(page, f"{FOX}.jpg")
        expect(page.locator("#download-bar")).to_be_visible()
        hidden = []
        # Forwards through every option, then back up: Shift+Tab scrolls upwards, where the
        # phone's preview sticks to the top of the screen.
        for key in ["Tab"] * 40 + ["Shift+Tab"] * 40:
            page.keyboard.press(key)
            covered = page.evaluate(COVERED_BY)
            if covered:
                hidden.append(f"{key}: {covered}")
        assert hidden == [], "focused controls out of sight:\n" + "\n".join(hidden)
    finally:
        page.context.close()


DEER = "ecssd_0205"  # three deer: three parts in the list from the start


def test_removing_a_part_by_keyboard_keeps_the_focus_on_that_part(
    page: Page, eval_dir: Path
) -> None:
    upload_with_picker(page, [photo(eval_dir, DEER)])
    open_editor(page, f"{DEER}.jpg")
    expect(page.locator("#parts-list .part")).to_have_count(3)
    remove = page.get_by_role("button", name="Remove part 2")
    remove.focus()
    page.keyboard.press("Enter")
    bring_back = page.get_by_role("button", name="Bring back part 2")
    expect(bring_back).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Remove part 3")).to_be_focused()

    # Undone from the keyboard while on the list: the focus stays on the same part.
    page.keyboard.press("Shift+Tab")
    page.keyboard.press("Control+z")
    expect(page.get_by_role("button", name="Remove part 2")).to_be_focused()
    page.keyboard.press("Enter")
    expect(bring_back).to_be_focused()
    page.keyboard.press("Space")
    expect(page.get_by_role("button", name="Remove part 2")).to_be_focused()


def test_undo_and_redo_by_keyboard_hand_the_focus_to_each_other_at_the_ends(
    page: Page, eval_dir: Path
) -> None:
    upload_with_picker(page, [photo(eval_dir, DEER)])
    open_editor(page, f"{DEER}.jpg")
    page.get_by_role("button", name="Remove part 3").click()
    expect(page.locator("#refine-tools")).to_have_attribute("data-saves", "1")
    undo, redo = page.locator("#undo-button"), page.locator("#redo-button")
    undo.focus()
    page.keyboard.press("Enter")  # back to the start: nothing left to undo
    expect(undo).to_be_disabled()
    expect(redo).to_be_focused()
    page.keyboard.press("Enter")  # and forward again: nothing left to redo
    expect(redo).to_be_disabled()
    expect(undo).to_be_focused()
    expect(page.get_by_role("button", name="Bring back part 3")).to_be_visible()


def test_download_by_keyboard_keeps_the_focus_on_the_button(page: Page, eval_dir: Path) -> None:
    upload_with_picker(page, [photo(eval_dir, FOX)])
    open_editor(page, f"{FOX}.jpg")
    button = page.get_by_role("button", name="Download")
    button.focus()
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    assert info.value.suggested_filename.endswith(".png")
    expect(button).to_have_text("Download")
    expect(button).to_be_focused()
    # And again at once, still from the keyboard.
    with page.expect_download():
        page.keyboard.press("Enter")
    expect(button).to_be_focused()


def test_a_zip_by_keyboard_moves_the_focus_between_download_and_cancel(
    page: Page, eval_dir: Path
) -> None:
    upload_with_picker(page, [photo(eval_dir, FOX)])
    wait_done(page, f"{FOX}.jpg")
    page.goto("/gallery/")
    page.get_by_role("button", name="Select all").click()
    download = page.get_by_role("button", name="Download ZIP")
    cancel = page.get_by_role("button", name="Cancel")
    # The server's answer is held back, so the ZIP is still being made when Cancel is pressed.
    held = []
    page.route("**/images/zip/", lambda route: held.append(route))
    download.focus()
    page.keyboard.press("Enter")
    expect(download).to_be_disabled()
    expect(cancel).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.locator("#batch-status")).to_have_text("Cancelled: nothing was saved.")
    expect(download).to_be_focused()
    assert len(held) == 1
    page.unroute("**/images/zip/")
    with page.expect_download():
        page.keyboard.press("Enter")
    expect(page.locator("#batch-status")).to_contain_text("Downloaded")
    expect(download).to_be_focused()


def test_a_refused_background_leaves_the_focus_on_its_button(page: Page, eval_dir: Path) -> None:
    choosers = watch_file_choosers(page)
    upload_with_picker(page, [photo(eval_dir, FOX)])
    open_editor(page, f"{FOX}.jpg")
    button = page.get_by_role("button", name="Upload your own background…")
    button.focus()
    page.keyboard.press("Enter")
    not_an_image = {"name": "notes.png", "mimeType": "image/png", "buffer": b"just some text\n"}
    wait_for_chooser(page, choosers).set_files([not_an_image])
    expect(page.locator("#background-error")).not_to_be_empty()
    expect(button).to_be_focused()


def test_retry_by_keyboard_keeps_the_focus_in_its_card(page: Page) -> None:
    # A busy server (Retry is offered for what passes with time, not for a refused file).
    busy = {"error": "The server is busy. Try again in a moment."}
    page.route("**/upload/", lambda route: route.fulfill(status=503, json=busy))
    page.goto("/")
    expect(page.locator("#dropzone")).to_have_attribute("data-ready", "true")
    not_an_image = {"name": "notes.png", "mimeType": "image/png", "buffer": b"just some text\n"}
    page.set_input_files("#file-input", [not_an_image])
    retry = page.get_by_role("button", name="Retry notes.png")
    retry.focus()
    page.keyboard.press("Enter")
    status = page.locator(".job-card .job-status")
    expect(status).to_be_focused()
    expect(status).to_have_text(busy["error"])  # refused again
    page.keyboard.press("Tab")
    expect(retry).to_be_focused()
    # Sent once more, to the server itself: refused for good, so Dismiss alone is left, and
    # the focus still waits in the card, on its status.
    page.unroute("**/upload/")
    page.keyboard.press("Enter")
    expect(status).to_contain_text("Not a supported image format")
    expect(retry).to_be_hidden()
    expect(status).to_be_focused()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Dismiss notes.png")).to_be_focused()
