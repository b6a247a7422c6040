"""Helpers that drive the app's pages the way a person would."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image
from playwright.sync_api import FileChooser, Locator, Page, expect

JOB_TIMEOUT_MS = 180_000

# Natural photos from the shared evaluation set, with their ground-truth subject masks.
DOG, FOX = "ecssd_0070", "ecssd_0235"


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


def open_upload_page(page: Page) -> None:
    page.goto("/")
    expect(page.locator("#dropzone")).to_have_attribute("data-ready", "true")


def upload_with_picker(page: Page, files: list[dict[str, object]]) -> None:
    open_upload_page(page)
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


def watch_file_choosers(page: Page) -> list[FileChooser]:
    """The file choosers the page opens from now on. Call it before the page loads:
    Playwright switches interception on without waiting for the browser, so a listener added
    just before the key press that opens one can miss it."""
    choosers: list[FileChooser] = []
    page.on("filechooser", lambda chooser: choosers.append(chooser))
    return choosers


def wait_for_chooser(page: Page, choosers: list[FileChooser]) -> FileChooser:
    """The one file chooser ``watch_file_choosers`` saw, waiting up to 10 s for it."""
    for _ in range(100):
        if choosers:
            break
        page.wait_for_timeout(100)
    assert len(choosers) == 1, f"{len(choosers)} file choosers opened"
    return choosers[0]
