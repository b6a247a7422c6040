"""The product as a person uses it: a real Chromium against the real server, the real
pipeline and real weights. Screenshots land in artifacts/ for a human to look at."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import numpy as np
import pytest
from playwright.sync_api import Page, WebSocketRoute, expect

from tests.browser.pages import (
    DOG,
    FOX,
    JOB_TIMEOUT_MS,
    card,
    download,
    open_editor,
    open_upload_page,
    photo,
    subject_mask,
    upload_with_picker,
    wait_done,
    wait_for_chooser,
    watch_file_choosers,
)

pytestmark = pytest.mark.browser

NAMED_STAGES = {"decoding", "segmenting", "refining", "matting", "composing", "encoding"}


DROP_FILES = """
([selector, files]) => {
  const transfer = new DataTransfer();
  for (const file of files) {
    const bytes = Uint8Array.from(atob(file.data), (c) => c.charCodeAt(0));
    transfer.items.add(new File([bytes], file.name, { type: file.mime }));
  }
  const zone = document.querySelector(selector);
  for (const type of ["dragenter", "dragover", "drop"]) {
    const init = { bubbles: true, cancelable: true, dataTransfer: transfer };
    zone.dispatchEvent(new DragEvent(type, init));
  }
}
"""

CANVAS_PIXEL = """
([x, y]) => Array.from(
  document.getElementById("after-canvas").getContext("2d").getImageData(x, y, 1, 1).data
)
"""


@pytest.fixture
def outside_requests(page: Page, server_url: str) -> list[str]:
    """Requests to anywhere but our own server (no CDNs, fonts or trackers allowed)."""
    seen: list[str] = []
    own = (server_url + "/", "data:", "blob:", "ws://127.0.0.1")

    page.on(
        "request", lambda request: None if request.url.startswith(own) else seen.append(request.url)
    )
    return seen


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """JavaScript errors on the page; each test asserts there were none."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    # Which resource failed, not just that one did.
    page.on(
        "response",
        lambda response: (
            errors.append(f"{response.status} {response.url}") if response.status >= 400 else None
        ),
    )
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    return errors


def test_drop_two_images_progress_through_stages_to_results(
    page: Page,
    eval_dir: Path,
    artifacts: Path,
    console_errors: list[str],
    outside_requests: list[str],
) -> None:
    open_upload_page(page)
    files = []
    for stem in (DOG, FOX):
        data = (eval_dir / "sod" / "images" / f"{stem}.jpg").read_bytes()
        files.append(
            {"name": f"{stem}.jpg", "mime": "image/jpeg", "data": base64.b64encode(data).decode()}
        )
    page.evaluate(DROP_FILES, ["#dropzone", files])
    running = page.locator('.job-card[data-status="running"]')
    running.first.wait_for(timeout=JOB_TIMEOUT_MS)
    page.screenshot(path=str(artifacts / "upload-progress.png"), full_page=True)
    for stem in (DOG, FOX):
        done = wait_done(page, f"{stem}.jpg")
        stages = set((done.get_attribute("data-stages-seen") or "").split())
        assert len(stages & NAMED_STAGES) >= 3, (stem, stages)
        assert done.locator(".job-progress").get_attribute("value") == "100"
    page.screenshot(path=str(artifacts / "upload-done.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(artifacts / "upload-phone.png"), full_page=True)
    assert console_errors == []
    assert outside_requests == []


def test_downloaded_cutout_png_is_transparent_around_an_opaque_subject(
    page: Page, eval_dir: Path, console_errors: list[str]
) -> None:
    upload_with_picker(page, [photo(eval_dir, DOG)])
    open_editor(page, f"{DOG}.jpg")
    cutout = download(page)
    assert cutout.mode == "RGBA"
    alpha = np.asarray(cutout)[..., 3]
    mask = subject_mask(eval_dir, DOG)
    assert alpha.shape == mask.shape
    assert max(alpha[0, 0], alpha[0, -1], alpha[-1, 0], alpha[-1, -1]) <= 10
    assert np.median(alpha[mask == 255]) >= 240
    assert console_errors == []


def test_colour_and_preset_backgrounds_change_preview_and_jpeg(
    page: Page,
    eval_dir: Path,
    artifacts: Path,
    console_errors: list[str],
    outside_requests: list[str],
) -> None:
    upload_with_picker(page, [photo(eval_dir, DOG)])
    open_editor(page, f"{DOG}.jpg")
    assert page.evaluate(CANVAS_PIXEL, [1, 1])[3] == 0

    page.fill("#color-input", "#ff0000")
    assert page.evaluate(CANVAS_PIXEL, [1, 1]) == [255, 0, 0, 255]
    page.select_option("#format-input", "jpeg")
    red = download(page)
    assert red.format == "JPEG"
    assert np.abs(np.asarray(red)[1, 1].astype(int) - [255, 0, 0]).max() <= 12

    page.get_by_role("radio", name="Calm sea").check()
    expect(page.locator("#after-canvas")).to_have_attribute("data-background", "preset")
    preview_corner = np.array(page.evaluate(CANVAS_PIXEL, [1, 1])[:3])
    assert np.abs(preview_corner - [255, 0, 0]).max() > 100
    page.screenshot(path=str(artifacts / "editor-background.png"), full_page=True)
    sea = download(page)
    assert sea.format == "JPEG"
    corner = np.asarray(sea)[1, 1].astype(int)
    assert np.abs(corner - preview_corner).max() <= 30
    assert np.abs(corner - [255, 0, 0]).max() > 100
    page.set_viewport_size({"width": 390, "height": 844})
    page.screenshot(path=str(artifacts / "editor-phone.png"), full_page=True)
    assert console_errors == []
    assert outside_requests == []


def test_gallery_lists_both_and_delete_removes_one_with_its_files(
    page: Page, eval_dir: Path, artifacts: Path, media_root: Path, console_errors: list[str]
) -> None:
    upload_with_picker(page, [photo(eval_dir, DOG)])
    expect(card(page, f"{DOG}.jpg")).to_have_attribute("data-job", re.compile("."))
    page.set_input_files("#file-input", [photo(eval_dir, FOX)])  # uploaded second: newer
    wait_done(page, f"{DOG}.jpg")
    wait_done(page, f"{FOX}.jpg")
    page.goto("/gallery/")
    cards = page.locator(".gallery-card")
    expect(cards).to_have_count(2)
    expect(cards.first).to_contain_text(f"{FOX}.jpg")  # newest first
    expect(cards.first).to_contain_text("Deleted in 23")
    page.screenshot(path=str(artifacts / "gallery.png"), full_page=True)

    dog_card = cards.filter(has_text=f"{DOG}.jpg")
    image_id = dog_card.get_attribute("data-image")
    folder = media_root / "images" / str(image_id)
    assert any(folder.rglob("*.png"))
    dog_card.get_by_role("button", name="Delete").click()
    # Hidden at once with a few seconds to undo it; then sent to the server and removed.
    expect(dog_card).to_be_hidden()
    expect(page.locator("#toast")).to_contain_text(f"Deleted {DOG}.jpg")
    expect(cards).to_have_count(1, timeout=15_000)
    assert not folder.exists()
    page.reload()
    expect(cards).to_have_count(1)
    expect(cards.first).to_contain_text(f"{FOX}.jpg")
    assert console_errors == []


def test_rejected_file_shows_its_error_while_the_other_succeeds(
    page: Page, eval_dir: Path, console_errors: list[str]
) -> None:
    not_an_image = {"name": "notes.png", "mimeType": "image/png", "buffer": b"just some text\n"}
    upload_with_picker(page, [not_an_image, photo(eval_dir, FOX)])
    rejected = card(page, "notes.png")
    expect(rejected).to_have_class("job-card card is-error")
    expect(rejected.locator(".job-status")).to_contain_text("Not a supported image format")
    wait_done(page, f"{FOX}.jpg")
    # The browser logs the 415 answer as a failed resource load; nothing else may fail.
    assert [error for error in console_errors if "415" not in error] == []


def test_reloading_mid_job_still_ends_with_the_result(
    page: Page, eval_dir: Path, console_errors: list[str]
) -> None:
    upload_with_picker(page, [photo(eval_dir, DOG), photo(eval_dir, FOX)])
    for stem in (DOG, FOX):
        card(page, f"{stem}.jpg").and_(page.locator("[data-job]")).wait_for()
    statuses = page.eval_on_selector_all(
        ".job-card", "cards => cards.map((card) => card.dataset.status)"
    )
    assert any(status != "done" for status in statuses), statuses  # a job is still going
    page.reload()
    for stem in (DOG, FOX):
        wait_done(page, f"{stem}.jpg")
    assert console_errors == []


PASTE_FILE = """
([name, data]) => {
  const transfer = new DataTransfer();
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
  const init = { bubbles: true, cancelable: true, clipboardData: transfer };
  document.dispatchEvent(new ClipboardEvent("paste", init));
}
"""


def test_keyboard_opens_the_picker_and_paste_uploads(
    page: Page, eval_dir: Path, console_errors: list[str]
) -> None:
    choosers = watch_file_choosers(page)
    open_upload_page(page)
    page.keyboard.press("Tab")  # skip link first
    expect(page.get_by_role("link", name="Skip to content")).to_be_focused()
    for _ in range(10):
        page.keyboard.press("Tab")
        if page.evaluate("document.activeElement.id") == "dropzone":
            break
    expect(page.locator("#dropzone")).to_be_focused()
    page.keyboard.press("Enter")
    assert wait_for_chooser(page, choosers).is_multiple()

    data = (eval_dir / "sod" / "images" / f"{DOG}.jpg").read_bytes()
    page.evaluate(PASTE_FILE, ["pasted.jpg", base64.b64encode(data).decode()])
    expect(card(page, "pasted.jpg")).to_have_attribute("data-job", re.compile(r"^[0-9a-f-]{36}$"))
    for image in page.locator("img:visible").all():
        assert image.get_attribute("alt") is not None
    assert console_errors == []


def test_page_falls_back_to_polling_when_the_websocket_cannot_connect(
    page: Page, eval_dir: Path
) -> None:
    refused: list[str] = []

    def refuse(socket: WebSocketRoute) -> None:
        refused.append(socket.url)
        socket.close(code=1011)

    page.route_web_socket(re.compile(r"/ws/jobs/"), refuse)
    upload_with_picker(page, [photo(eval_dir, FOX)])
    wait_done(page, f"{FOX}.jpg")
    assert refused, "the page never tried the websocket"
