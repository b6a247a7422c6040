"""Privacy and security as a person meets them in a real Chromium: pages that work under the
strict Content-Security-Policy, the expiry and the privacy promise on the pages, "delete all",
and a file over the size limit refused before it is sent."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import UPLOAD_LIMIT_BYTES
from tests.browser.pages import DOG, FOX, card, open_editor, open_upload_page, photo, wait_done

pytestmark = pytest.mark.browser

# Installed before any page script runs (init scripts are not subject to the page's CSP).
WATCH_CSP = """
window.cspViolations = [];
document.addEventListener("securitypolicyviolation", (event) => {
  window.cspViolations.push(`${event.violatedDirective} ${event.blockedURI}`);
});
"""


def csp_violations(page: Page) -> list[str]:
    return page.evaluate("window.cspViolations")


def test_pages_work_under_the_content_security_policy(page: Page, eval_dir: Path) -> None:
    page.add_init_script(WATCH_CSP)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.on("console", lambda msg: errors.append(msg.text) if msg.type == "error" else None)

    open_upload_page(page)
    footer = page.locator(".site-footer")
    expect(footer).to_contain_text("deleted automatically 24 hours after upload")
    expect(footer).to_contain_text("used only to make your own results")
    page.set_input_files("#file-input", [photo(eval_dir, DOG)])
    open_editor(page, f"{DOG}.jpg")
    assert csp_violations(page) == []
    expect(page.locator(".editor-title + p time")).to_contain_text(re.compile(r"deleted in 23"))

    # Styles the markup no longer carries inline are set by the module, through the CSSOM.
    white = page.locator('.swatch-face[data-color="#ffffff"]')
    assert white.evaluate("el => getComputedStyle(el).backgroundColor") == "rgb(255, 255, 255)"
    ratio = page.locator("#compare").evaluate("el => el.style.aspectRatio")
    assert ratio.replace(" ", "") == "400/330"
    page.locator("#compare-range").fill("20")
    position = page.locator("#compare").evaluate("el => el.style.getPropertyValue('--pos')")
    assert position == "20%"

    page.goto("/gallery/")
    expect(page.locator(".gallery-card")).to_have_count(1)
    assert csp_violations(page) == []
    assert errors == []


def test_delete_all_empties_the_gallery_and_the_disk(
    page: Page, eval_dir: Path, media_root: Path
) -> None:
    open_upload_page(page)
    page.set_input_files("#file-input", [photo(eval_dir, DOG)])
    wait_done(page, f"{DOG}.jpg")
    page.goto("/gallery/")
    image_id = page.locator(".gallery-card").first.get_attribute("data-image")
    folder = media_root / "images" / str(image_id)
    assert folder.is_dir()
    dialogs: list[str] = []

    def accept(dialog: object) -> None:
        dialogs.append(dialog.message)  # type: ignore[attr-defined]
        dialog.accept()  # type: ignore[attr-defined]

    page.once("dialog", accept)
    page.get_by_role("button", name="Delete all my images").click()
    expect(page.get_by_role("heading", name="No images yet")).to_be_visible()
    assert dialogs and "Delete all 1 of your images" in dialogs[0]
    assert not folder.exists()
    expect(page.get_by_role("button", name="Delete all my images")).to_have_count(0)


def test_a_file_over_the_size_limit_is_refused_before_it_is_sent(page: Page) -> None:
    uploads: list[str] = []
    page.on("request", lambda r: uploads.append(r.url) if r.url.endswith("/upload/") else None)
    open_upload_page(page)
    big = {"name": "huge.png", "mimeType": "image/png", "buffer": b"\0" * (UPLOAD_LIMIT_BYTES + 1)}
    page.set_input_files("#file-input", [big])
    refused = card(page, "huge.png")
    expect(refused.locator(".job-status")).to_have_text(
        "huge.png is too large: the limit is 4.0 MB."
    )
    expect(refused).to_have_attribute("data-status", "rejected")
    assert uploads == []


DELETE_IMAGE_OF_A_QUEUED_JOB = """
async (jobs) => {
  const token = document.querySelector('meta[name="csrf-token"]').content;
  for (const job of jobs) {
    const state = await (await fetch(`/jobs/${job}/status/`)).json();
    if (state.status !== "queued") continue;
    await fetch(`/images/${state.image}/delete/`, {
      method: "POST",
      headers: { "X-CSRFToken": token, Accept: "application/json" },
    });
    return job;
  }
  return null;
}
"""


def test_a_job_whose_image_is_deleted_meanwhile_says_so_and_stops_polling(
    page: Page, eval_dir: Path
) -> None:
    page.route_web_socket(re.compile(r"/ws/jobs/"), lambda socket: socket.close(code=1011))
    status_requests: list[str] = []
    page.on("request", lambda r: status_requests.append(r.url) if "/status/" in r.url else None)
    open_upload_page(page)
    page.set_input_files("#file-input", [photo(eval_dir, DOG), photo(eval_dir, FOX)])
    jobs = []
    for stem in (DOG, FOX):
        target = card(page, f"{stem}.jpg")
        expect(target).to_have_attribute("data-job", re.compile("."))
        jobs.append(target.get_attribute("data-job"))
    # One worker runs one job at a time: the other one is still waiting.
    deleted = page.evaluate(DELETE_IMAGE_OF_A_QUEUED_JOB, jobs)
    assert deleted is not None
    gone = page.locator(f'.job-card[data-job="{deleted}"]')
    expect(gone.locator(".job-status")).to_have_text(
        "This image no longer exists: it was deleted, or its retention period ended."
    )
    expect(gone).to_have_attribute("data-status", "failed")
    asked = sum(deleted in url for url in status_requests)
    page.wait_for_timeout(2500)
    assert sum(deleted in url for url in status_requests) == asked
