"""The gallery a page at a time (GALLERY_PAGE_SIZE): the pages' links, "Delete all" counting
every image, not only this page's, and the last card of a page going without "No images yet"
while older images remain. Its own server, one image a page."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import new_page, server_of_its_own
from tests.browser.pages import DOG, FOX, open_upload_page, photo, wait_done

# The toast's undo time (static/js/undo.js) and a margin.
UNDO_TIME_MS = 6500


@pytest.fixture(scope="module")
def paged_server(tmp_path_factory: pytest.TempPathFactory, u2netp_weights: Path) -> Iterator[str]:
    with server_of_its_own(tmp_path_factory, u2netp_weights, "paged", GALLERY_PAGE_SIZE="1") as url:
        yield url


@pytest.fixture
def paged_page(browser: Browser, paged_server: str) -> Iterator[Page]:
    fresh = new_page(browser, paged_server)
    yield fresh
    fresh.context.close()


def test_the_gallery_goes_page_by_page_and_its_last_card_leaves_older_ones(
    paged_page: Page, eval_dir: Path
) -> None:
    page = paged_page
    open_upload_page(page)
    for stem in (DOG, FOX):
        page.set_input_files("#file-input", [photo(eval_dir, stem)])
        wait_done(page, f"{stem}.jpg")
    page.goto("/gallery/")
    cards = page.locator(".gallery-card")
    pager = page.get_by_role("navigation", name="Pages of your images")
    expect(cards).to_have_count(1)
    expect(cards).to_contain_text(f"{FOX}.jpg")  # newest first
    expect(pager).to_contain_text("Page 1 of 2, 2 images in all")

    # "Delete all" means every image, on every page.
    dialogs: list[str] = []

    def refuse(dialog: object) -> None:
        dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.dismiss()  # type: ignore[attr-defined]

    page.once("dialog", refuse)
    page.get_by_role("button", name="Delete all my images").click()
    assert len(dialogs) == 1 and "Delete all 2 of your images" in dialogs[0]
    expect(cards).to_have_count(1)  # refused: nothing deleted

    pager.get_by_role("link", name="Older images").click()
    expect(cards).to_contain_text(f"{DOG}.jpg")
    pager.get_by_role("link", name="Newer images").click()
    expect(cards).to_contain_text(f"{FOX}.jpg")

    # The page's only card goes: older images remain, so not "No images yet"; once the undo
    # time is over, the page shows them.
    page.get_by_role("button", name=f"Delete {FOX}.jpg").click()
    expect(cards.filter(has_text=f"{FOX}.jpg")).to_be_hidden()
    expect(page.get_by_role("heading", name="No images yet")).to_be_hidden()
    page.wait_for_timeout(UNDO_TIME_MS)
    expect(cards).to_contain_text(f"{DOG}.jpg")
    expect(page.get_by_role("navigation", name="Pages of your images")).to_have_count(0)
