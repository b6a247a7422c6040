"""Running an image again with other matting settings, from the editor: the page that comes
back keeps the person's render settings, and "Run again" waits for the run it started."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from playwright.sync_api import Page, Request, Route, expect

from tests.browser.pages import DOG, JOB_TIMEOUT_MS, open_editor, photo, upload_with_picker

pytestmark = pytest.mark.browser

# True once the editor has loaded again (the marker is gone with the old page).
RELOADED = (
    "() => !window.beforeRerun && document.getElementById('compare')?.dataset.ready === 'true'"
)


@pytest.fixture
def editor(page: Page, eval_dir: Path) -> Page:
    upload_with_picker(page, [photo(eval_dir, DOG)])
    open_editor(page, f"{DOG}.jpg")
    return page


def run_again(page: Page, matting: str) -> None:
    """Press "Run again" with ``matting`` and wait for the editor to load the new result."""
    page.evaluate("window.beforeRerun = true")
    page.locator("#rerun-form").get_by_label(matting, exact=True).check()
    page.get_by_role("button", name="Run again").click()
    page.wait_for_function(RELOADED, timeout=JOB_TIMEOUT_MS)


def test_a_rerun_keeps_the_background_crop_canvas_and_shadow(editor: Page) -> None:
    page = editor
    page.get_by_role("radio", name="Sky blue").check()
    page.get_by_label("Crop to the subject").check()
    page.locator("#margin-input").fill("12")
    page.select_option("#canvas-input", "custom")
    page.locator("#canvas-width-input").fill("640")
    page.locator("#canvas-height-input").fill("480")
    page.get_by_label("Resize the subject").check()
    page.locator("#scale-input").fill("60")
    page.get_by_label("Drop shadow").check()
    page.locator("#shadow-opacity-input").fill("70")
    page.select_option("#format-input", "jpeg")

    run_again(page, "Off")

    expect(page.get_by_role("radio", name="Sky blue")).to_be_checked()
    expect(page.locator("#render-form input[name=background]")).to_have_value("color")
    expect(page.locator("#render-form input[name=color]")).to_have_value("#93c5fd")
    expect(page.locator("#after-canvas")).to_have_attribute("data-background", "color")
    expect(page.get_by_label("Crop to the subject")).to_be_checked()
    expect(page.locator("#margin-input")).to_have_value("12")
    expect(page.locator("#margin-output")).to_have_text("12%")
    expect(page.locator("#canvas-input")).to_have_value("custom")
    expect(page.locator("#canvas-size-field")).to_be_visible()
    expect(page.locator("#canvas-width-input")).to_have_value("640")
    expect(page.locator("#canvas-height-input")).to_have_value("480")
    expect(page.get_by_label("Resize the subject")).to_be_checked()
    expect(page.locator("#scale-input")).to_have_value("60")
    expect(page.get_by_label("Place the subject")).not_to_be_checked()
    expect(page.get_by_label("Drop shadow")).to_be_checked()
    expect(page.locator("#shadow-opacity-input")).to_have_value("70")
    expect(page.locator("output[for=shadow-opacity-input]")).to_have_text("70%")
    expect(page.locator("#format-input")).to_have_value("jpeg")
    expect(page.locator("#format-hint")).to_contain_text("640×480")
    # The new run's matting is the one chosen.
    expect(page.locator("#rerun-form").get_by_label("Off", exact=True)).to_be_checked()

    # Settings switched back off stay off after the next run.
    page.get_by_label("Crop to the subject").uncheck()
    page.get_by_label("Drop shadow").uncheck()
    page.get_by_role("radio", name="Transparent").check()
    run_again(page, "Automatic")
    expect(page.get_by_label("Crop to the subject")).not_to_be_checked()
    expect(page.get_by_label("Drop shadow")).not_to_be_checked()
    expect(page.get_by_role("radio", name="Transparent")).to_be_checked()
    expect(page.locator("#after-canvas")).to_have_attribute("data-background", "transparent")
    expect(page.locator("#canvas-input")).to_have_value("custom")


def test_run_again_waits_for_the_run_it_started_and_keeps_the_focus(editor: Page) -> None:
    page = editor
    reruns: list[Request] = []
    page.on("request", lambda r: reruns.append(r) if r.url.endswith("/rerun/") else None)
    # The page learns nothing of the new run until the test lets it: no websocket, and the
    # status polls are held. So the run stays queued for the page while it is checked.
    page.route_web_socket(re.compile(r"/ws/jobs/"), lambda socket: socket.close(code=1011))
    held: list[Route] = []
    status = re.compile(r"/jobs/[^/]+/status/")

    def hold(route: Route) -> None:
        held.append(route)

    page.route(status, hold)

    page.evaluate("window.beforeRerun = true")
    button = page.locator("#rerun-button")
    button.focus()
    page.keyboard.press("Enter")
    card = page.locator("#editor-job .job-card")
    expect(card).to_be_visible()
    expect(button).to_have_attribute("aria-disabled", "true")
    expect(button).to_have_text("Running…")
    expect(button).to_be_focused()  # not dropped to the page
    expect(button).to_be_visible()
    # Pressed again, by keyboard or pointer, it starts no second run.
    page.keyboard.press("Enter")
    button.click(force=True)  # Playwright itself waits on an aria-disabled button
    page.wait_for_timeout(500)
    assert len(reruns) == 1
    expect(button).to_be_focused()

    # The run ends: the new result loads, with "Run again" ready once more.
    for route in list(held):
        route.continue_()
    page.unroute(status, hold)  # lets any poll held meanwhile through too
    page.wait_for_function(RELOADED, timeout=JOB_TIMEOUT_MS)
    expect(page.locator("#rerun-button")).to_have_text("Run again")
    expect(page.locator("#rerun-button")).not_to_have_attribute("aria-disabled", "true")
    assert len(reruns) == 1
