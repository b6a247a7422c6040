"""The product as a person uses it: a real Chromium against the real server, the real
pipeline and real weights. Screenshots land in artifacts/ for a human to look at."""

from __future__ import annotations

import base64
import io
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Locator, Page, expect

pytestmark = pytest.mark.browser

JOB_TIMEOUT_MS = 180_000
NAMED_STAGES = {"decoding", "segmenting", "refining", "matting", "composing", "encoding"}

# Natural photos from the shared evaluation set, with their ground-truth subject masks.
DOG, FOX = "ecssd_0070", "ecssd_0235"

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


def photo(eval_dir: Path, stem: str) -> dict[str, object]:
    data = (eval_dir / "sod" / "images" / f"{stem}.jpg").read_bytes()
    return {"name": f"{stem}.jpg", "mimeType": "image/jpeg", "buffer": data}


def subject_mask(eval_dir: Path, stem: str) -> np.ndarray:
    return np.asarray(Image.open(eval_dir / "sod" / "masks" / f"{stem}.png").convert("L"))


def card(page: Page, name: str) -> Locator:
    return page.locator(".job-card", has=page.locator(".job-name", has_text=name))


def wait_done(page: Page, name: str) -> Locator:
    target = card(page, name)
    expect(target).to_have_attribute("data-status", "done", timeout=JOB_TIMEOUT_MS)
    expect(target.locator("img.thumb-cutout")).to_be_visible()
    return target


def upload_with_picker(page: Page, files: list[dict[str, object]]) -> None:
    page.goto("/")
    page.set_input_files("#file-input", files)


def open_editor(page: Page, name: str) -> None:
    wait_done(page, name).get_by_role("link", name="Open editor").click()
    expect(page.locator("#compare")).to_have_attribute("data-ready", "true")


def download(page: Page) -> Image.Image:
    with page.expect_download() as info:
        page.get_by_role("button", name="Download").click()
    image = Image.open(io.BytesIO(Path(info.value.path()).read_bytes()))
    image.load()
    return image


@pytest.fixture
def console_errors(page: Page) -> list[str]:
    """JavaScript errors on the page; each test asserts there were none."""
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on(
        "console", lambda message: errors.append(message.text) if message.type == "error" else None
    )
    return errors


def test_drop_two_images_progress_through_stages_to_results(
    page: Page, eval_dir: Path, artifacts: Path, console_errors: list[str]
) -> None:
    page.goto("/")
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
    page: Page, eval_dir: Path, artifacts: Path, console_errors: list[str]
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
    page.wait_for_function(
        "() => document.getElementById('after-canvas').dataset.background === 'preset'"
    )
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


def test_gallery_lists_both_and_delete_removes_one_with_its_files(
    page: Page, eval_dir: Path, artifacts: Path, media_root: Path, console_errors: list[str]
) -> None:
    upload_with_picker(page, [photo(eval_dir, DOG), photo(eval_dir, FOX)])
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
    page.once("dialog", lambda dialog: dialog.accept())
    dog_card.get_by_role("button", name="Delete").click()
    expect(cards).to_have_count(1)
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
