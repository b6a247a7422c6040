"""Batch in the browser, on the real server: select images in the gallery (pointer, keyboard,
touch), one set of settings, a ZIP that is sent while it is rendered (and counted as it
arrives); settings chosen on the upload page carried to the editor and the ZIP."""

from __future__ import annotations

import http.client
import io
import re
import time
import zipfile
from pathlib import Path
from urllib.parse import urlencode, urlsplit

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import PHONE, device_page
from tests.browser.pages import (
    DOG,
    FOX,
    JOB_TIMEOUT_MS,
    card,
    open_upload_page,
    photo,
    wait_done,
)
from tests.browser.test_accessibility import assert_no_violations

pytestmark = pytest.mark.browser

THIRD = "ecssd_0003"


def upload_and_wait(page: Page, eval_dir: Path, stems: list[str]) -> None:
    open_upload_page(page)
    page.set_input_files("#file-input", [photo(eval_dir, stem) for stem in stems])
    for stem in stems:
        wait_done(page, f"{stem}.jpg")


def open_gallery(page: Page, cards: int) -> None:
    page.goto("/gallery/")
    expect(page.locator(".gallery-card")).to_have_count(cards)
    expect(page.locator("#batch-count")).to_have_text("0 selected")


def download_zip(page: Page) -> zipfile.ZipFile:
    with page.expect_download() as info:
        page.get_by_role("button", name="Download ZIP").click()
    archive = zipfile.ZipFile(io.BytesIO(Path(info.value.path()).read_bytes()))
    assert archive.testzip() is None
    return archive


def corner(data: bytes) -> np.ndarray:
    picture = Image.open(io.BytesIO(data)).convert("RGB")
    return np.asarray(picture)[:6, :6].reshape(-1, 3).mean(axis=0)


def test_two_of_three_images_in_a_zip_with_a_colour_background(page: Page, eval_dir: Path) -> None:
    upload_and_wait(page, eval_dir, [DOG, FOX, THIRD])
    open_gallery(page, 3)
    page.get_by_role("checkbox", name=f"Select {DOG}.jpg").check()
    page.get_by_role("checkbox", name=f"Select {FOX}.jpg").check()
    expect(page.locator("#batch-count")).to_have_text("2 selected")

    page.locator("#batch-settings summary").click()
    page.get_by_label("Background", exact=True).select_option("color")
    expect(page.get_by_label("Colour", exact=True)).to_be_visible()
    expect(page.get_by_label("Preset photo")).to_be_hidden()
    page.get_by_label("Colour", exact=True).fill("#ff0000")
    page.get_by_label("Format").select_option("jpeg")
    assert_no_violations(page, "gallery with two images selected and the settings open")

    archive = download_zip(page)
    assert sorted(archive.namelist()) == sorted([f"{DOG}-color.jpg", f"{FOX}-color.jpg"])
    for name in archive.namelist():
        red = corner(archive.read(name))
        assert red[0] > 230 and red[1] < 30 and red[2] < 30, (name, red)
    status = page.locator("#batch-status")
    expect(status).to_contain_text("2 of 2 images")
    expect(page.get_by_role("button", name="Download ZIP")).to_be_enabled()


def test_an_image_that_finishes_while_the_gallery_is_open_can_be_selected_at_once(
    page: Page, eval_dir: Path
) -> None:
    """No reload: the gallery follows the jobs it shows unfinished; once one is done its card
    has its thumbnails, its download link and a checkbox that puts it in the ZIP."""
    stems = [DOG, FOX, THIRD]
    open_upload_page(page)
    page.set_input_files("#file-input", [photo(eval_dir, stem) for stem in stems])
    for stem in stems:  # every upload answered, so leaving the page cancels none
        expect(card(page, f"{stem}.jpg")).to_have_attribute("data-status", re.compile("."))
    page.goto("/gallery/")
    pending = page.locator(".gallery-card[data-state]")  # one worker: the last ones queue
    assert pending.count() > 0, "every job ended before the gallery opened"
    later = pending.last
    name = later.locator(".job-name").inner_text()
    expect(later.locator(".select-unavailable")).to_be_visible()
    page.evaluate("window.stillTheSamePage = true")

    checkbox = page.get_by_role("checkbox", name=f"Select {name}")
    expect(checkbox).to_be_visible(timeout=JOB_TIMEOUT_MS)
    checkbox.check()
    expect(page.locator("#batch-count")).to_have_text("1 selected")
    expect(later.locator(".badge-done")).to_have_text("Done")
    expect(later.locator("img")).to_have_count(2)
    expect(later.get_by_role("link", name=f"Download PNG of {name}")).to_be_visible()
    expect(later.locator(".select-unavailable")).to_have_count(0)
    assert page.evaluate("window.stillTheSamePage") is True  # not reloaded
    assert download_zip(page).namelist() == [name.replace(".jpg", "-cutout.png")]


def test_selection_by_keyboard_and_on_a_phone(
    page: Page, browser: Browser, server_url: str, eval_dir: Path
) -> None:
    upload_and_wait(page, eval_dir, [DOG, FOX])
    open_gallery(page, 2)
    dog = page.get_by_role("checkbox", name=f"Select {DOG}.jpg")
    dog.focus()
    page.keyboard.press("Space")
    expect(page.locator("#batch-count")).to_have_text("1 selected")
    page.keyboard.press("Space")
    expect(page.locator("#batch-count")).to_have_text("0 selected")
    expect(page.get_by_role("button", name="Download ZIP")).to_be_disabled()
    page.get_by_role("button", name="Select all").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#batch-count")).to_have_text("2 selected")
    expect(dog).to_be_checked()
    page.get_by_role("button", name="Clear").focus()
    page.keyboard.press("Enter")
    expect(page.locator("#batch-count")).to_have_text("0 selected")
    dog.focus()
    page.keyboard.press("Space")
    page.get_by_role("button", name="Download ZIP").focus()
    with page.expect_download() as info:
        page.keyboard.press("Enter")
    names = zipfile.ZipFile(info.value.path()).namelist()
    assert names == [f"{DOG}-cutout.png"]

    # The same owner on a phone: each selection target is at least 44 px high, and a tap
    # selects.
    phone = device_page(browser, server_url, PHONE, storage_state=page.context.storage_state())
    try:
        open_gallery(phone, 2)
        for label in phone.locator(".select-card").all():
            box = label.bounding_box()
            assert box is not None and box["height"] >= 44, box
        phone.locator(".select-card", has_text=f"{FOX}.jpg").tap()
        expect(phone.locator("#batch-count")).to_have_text("1 selected")
        assert_no_violations(phone, "gallery on a phone with one image selected")
    finally:
        phone.context.close()


def enlarged(eval_dir: Path, stem: str, name: str) -> dict[str, object]:
    picture = Image.open(eval_dir / "sod" / "images" / f"{stem}.jpg")
    big = picture.resize((picture.width * 4, picture.height * 4), Image.Resampling.BICUBIC)
    buffer = io.BytesIO()
    big.save(buffer, "JPEG", quality=90)
    return {"name": name, "mimeType": "image/jpeg", "buffer": buffer.getvalue()}


def test_the_zip_is_sent_while_it_is_rendered(page: Page, server_url: str, eval_dir: Path) -> None:
    """Through Daphne: the first image's entry arrives long before the archive ends (were
    the response read whole first, as Django does with a synchronous iterator under ASGI,
    every byte would arrive at once); in the gallery it can be cancelled meanwhile."""
    # 2 MP copies: each render takes long enough to tell apart from the network's noise.
    names = ["big-1.jpg", "big-2.jpg", "big-3.jpg"]
    open_upload_page(page)
    page.set_input_files("#file-input", [enlarged(eval_dir, DOG, name) for name in names])
    for name in names:
        wait_done(page, name)
    open_gallery(page, 3)
    ids = page.locator(".select-input").evaluate_all("(inputs) => inputs.map((i) => i.value)")
    token = page.locator('meta[name="csrf-token"]').get_attribute("content")
    cookies = "; ".join(f"{c['name']}={c['value']}" for c in page.context.cookies())
    # A blurred background: each render takes a while.
    body = urlencode([("image", i) for i in ids] + [("background", "blur"), ("blur", "100")])
    url = urlsplit(server_url)
    connection = http.client.HTTPConnection(url.hostname, url.port, timeout=120)
    started = time.monotonic()
    connection.request(
        "POST",
        "/images/zip/",
        body=body,
        headers={
            "Content-Type": "application/x-www-form-urlencoded",
            "Cookie": cookies,
            "X-CSRFToken": token or "",
        },
    )
    response = connection.getresponse()
    assert response.status == 200, response.read()[:300]
    arrivals: list[tuple[float, int]] = []
    data = bytearray()
    while chunk := response.read1(65536):
        data += chunk
        arrivals.append((time.monotonic(), len(data)))
    connection.close()
    archive = zipfile.ZipFile(io.BytesIO(bytes(data)))
    assert len(archive.namelist()) == 3
    first_entry = archive.infolist()[0]
    first_end = 30 + len(first_entry.filename.encode()) + first_entry.compress_size
    first_arrived = next(at for at, size in arrivals if size >= first_end)
    ended = arrivals[-1][0]
    # Two more renders follow the first entry: a good part of the whole time.
    assert ended - first_arrived > 0.25 * (ended - started), (first_arrived, ended, started)

    # In the gallery the same ZIP shows its progress and can be cancelled.
    page.reload()
    page.get_by_role("button", name="Select all").click()
    page.locator("#batch-settings summary").click()
    page.get_by_label("Background", exact=True).select_option("blur")
    page.get_by_label("Blur strength (1–100)").fill("100")
    downloads: list[object] = []
    page.on("download", lambda download: downloads.append(download))
    page.get_by_role("button", name="Download ZIP").click()
    expect(page.locator("#batch-status")).to_contain_text("of 3")  # progress is shown
    page.get_by_role("button", name="Cancel").click()
    expect(page.locator("#batch-status")).to_have_text("Cancelled: nothing was saved.")
    expect(page.get_by_role("button", name="Cancel")).to_be_hidden()
    assert downloads == []
    # The server goes on serving: the next ZIP comes whole.
    page.get_by_role("button", name="Clear").click()
    page.get_by_role("checkbox", name="Select big-2.jpg").check()
    assert download_zip(page).namelist() == ["big-2-blur.png"]


def test_settings_chosen_at_upload_reach_the_editor_and_the_zip(page: Page, eval_dir: Path) -> None:
    open_upload_page(page)
    page.locator("#upload-settings summary").click()
    page.get_by_label("Keep these settings").check()
    page.get_by_label("Background", exact=True).select_option("color")
    page.get_by_label("Colour", exact=True).fill("#0000ff")
    page.get_by_label("Canvas", exact=True).select_option("square")
    page.get_by_label("Shadow", exact=True).check()
    assert_no_violations(page, "upload page with its batch settings open")
    page.set_input_files("#file-input", [photo(eval_dir, DOG)])
    wait_done(page, f"{DOG}.jpg").get_by_role("link", name="Open editor").click()
    expect(page.locator("#compare")).to_have_attribute("data-ready", "true")
    expect(page.locator("#render-form input[name=background]")).to_have_value("color")
    expect(page.locator("#render-form input[name=color]")).to_have_value("#0000ff")
    expect(page.locator("#canvas-input")).to_have_value("square")
    expect(page.locator("#shadow-input")).to_be_checked()
    expect(page.locator("#shadow-opacity-input")).to_be_enabled()

    open_gallery(page, 1)
    expect(page.locator(".gallery-card .badge", has_text="Upload settings")).to_be_visible()
    page.get_by_role("checkbox", name=f"Select {DOG}.jpg").check()
    assert_no_violations(page, "gallery with an image keeping upload settings")
    archive = download_zip(page)  # "use the settings chosen at upload" is on by default
    assert archive.namelist() == [f"{DOG}-color.png"]
    square = Image.open(io.BytesIO(archive.read(f"{DOG}-color.png")))
    assert square.width == square.height == 400  # the 400×330 photo on a square canvas
    blue = corner(archive.read(f"{DOG}-color.png"))
    assert blue[2] > 230 and blue[0] < 30 and blue[1] < 30, blue
    # With its last image deleted, the gallery offers no ZIP.
    page.get_by_role("button", name=f"Delete {DOG}.jpg").click()
    expect(page.locator("#batch-panel")).to_be_hidden()
