"""The pages as a person uses them on a phone and on a laptop: files brought into view,
the preview and Download on screen together, touch targets, swipes, refused files, drops
anywhere, the editor's hints, deleting with Undo, the dark theme."""

from __future__ import annotations

import base64
import re
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.conftest import DESKTOP, PHONE, device_page
from tests.browser.pages import DOG, FOX, card, download, open_editor, photo, wait_done

pytestmark = pytest.mark.browser

TOUCH_PX = 44
NOT_AN_IMAGE = {"name": "notes.png", "mimeType": "image/png", "buffer": b"just some text\n"}


def in_viewport(page: Page, target: Locator) -> bool:
    box = target.bounding_box()
    size = page.viewport_size
    assert box is not None and size is not None
    return box["y"] >= 0 and box["y"] + box["height"] <= size["height"] + 0.5


def open_upload(page: Page) -> None:
    page.goto("/")
    expect(page.locator("#dropzone")).to_have_attribute("data-ready", "true")


def swipe_up(page: Page, x: float, y: float, distance: int = 300) -> None:
    """A finger moving up the screen, as touch events through the browser's input pipeline
    (it scrolls the page like a real one; Input.synthesizeScrollGesture needs a GPU)."""
    session = page.context.new_cdp_session(page)
    steps = 10
    session.send(
        "Input.dispatchTouchEvent", {"type": "touchStart", "touchPoints": [{"x": x, "y": y}]}
    )
    for step in range(1, steps + 1):
        point = {"x": x, "y": y - distance * step / steps}
        session.send("Input.dispatchTouchEvent", {"type": "touchMove", "touchPoints": [point]})
        page.wait_for_timeout(16)
    session.send("Input.dispatchTouchEvent", {"type": "touchEnd", "touchPoints": []})
    session.detach()


def test_phone_journey_upload_edit_download_and_delete_with_undo(
    phone_page: Page, eval_dir: Path, artifacts: Path
) -> None:
    page = phone_page
    open_upload(page)
    # Phones are not told to drop files or press Ctrl+V.
    zone = page.locator("#dropzone")
    expect(zone).to_contain_text("Choose photos")
    expect(zone.get_by_text("Drop images here")).to_be_hidden()
    expect(zone.get_by_text("Ctrl+V")).to_be_hidden()

    page.set_input_files("#file-input", [photo(eval_dir, DOG)])
    target = card(page, f"{DOG}.jpg")
    expect(target).to_be_in_viewport()  # brought up from below the fold
    wait_done(page, f"{DOG}.jpg")
    page.screenshot(path=str(artifacts / "phone-upload-done.png"))
    target.locator(".job-open").click()
    compare = page.locator("#compare")
    expect(compare).to_have_attribute("data-ready", "true")

    download_button = page.get_by_role("button", name="Download")
    expect(download_button).to_be_in_viewport()
    assert in_viewport(page, compare), "the preview starts on screen"
    # Scroll down to the last background choices: the preview and Download stay on screen.
    sea = page.get_by_role("radio", name="Calm sea")
    sea.scroll_into_view_if_needed()
    page.locator("#crop-input").scroll_into_view_if_needed()
    assert in_viewport(page, compare), "the preview scrolled away"
    assert in_viewport(page, download_button), "Download scrolled away"

    # Touch targets: swatches, photos, the margin slider, the checkbox's row, the buttons.
    for control in [
        *page.locator(".swatch").all(),
        page.locator("#margin-input"),
        *page.locator(".check").all(),
        page.locator("#canvas-input"),
        page.locator("#scale-input"),
        page.locator("#position-x-input"),
        page.locator("#shadow-opacity-input"),
        download_button,
        page.locator("#background-button"),
        page.locator("#format-input"),
    ]:
        if not control.is_visible():
            continue
        box = control.bounding_box()
        assert box and min(box["width"], box["height"]) >= TOUCH_PX, (control, box)
    # The custom canvas's size fields, shown only for a custom canvas.
    page.select_option("#canvas-input", "custom")
    for control in (page.locator("#canvas-width-input"), page.locator("#canvas-height-input")):
        box = control.bounding_box()
        assert box and min(box["width"], box["height"]) >= TOUCH_PX, (control, box)
    page.select_option("#canvas-input", "original")

    # A vertical swipe on the before/after picture scrolls the page, not the divider.
    page.evaluate("window.scrollTo(0, 0)")
    box = compare.bounding_box()
    assert box is not None
    before = page.evaluate("window.scrollY")
    swipe_up(page, box["x"] + box["width"] * 0.25, box["y"] + box["height"] * 0.9, 200)
    page.wait_for_timeout(300)
    assert page.evaluate("window.scrollY") > before + 50
    expect(page.locator("#compare-range")).to_have_value("50")
    # A tap does move it.
    box = compare.bounding_box()
    assert box is not None
    page.touchscreen.tap(box["x"] + box["width"] * 0.25, box["y"] + box["height"] / 2)
    expect(page.locator("#compare-range")).not_to_have_value("50")

    sea.check()
    expect(page.locator("#after-canvas")).to_have_attribute("data-background", "preset")
    page.screenshot(path=str(artifacts / "phone-editor-scrolled.png"))
    assert download(page).size == (400, 330)

    # Delete, undo, delete again: on to the gallery, where it is gone.
    image_url = page.url
    delete = page.get_by_role("button", name="Delete this image")
    delete.click()
    toast = page.locator("#toast")
    expect(toast).to_contain_text(f"Deleted {DOG}.jpg")
    undo = toast.get_by_role("button", name="Undo")
    box = undo.bounding_box()
    assert box and box["height"] >= TOUCH_PX
    undo.click()
    expect(toast).to_be_hidden()
    expect(compare).to_be_visible()
    page.wait_for_timeout(7000)  # past the undo time: nothing was sent
    assert page.request.get(image_url).status == 200
    delete.click()
    expect(page).to_have_url(re.compile(r"/gallery/$"), timeout=15_000)
    expect(page.get_by_role("heading", name="No images yet")).to_be_visible()
    assert page.request.get(image_url).status == 404


def test_desktop_editor_download_visible_hints_mask_and_margin(
    desktop_page: Page, eval_dir: Path
) -> None:
    page = desktop_page
    open_upload(page)
    page.set_input_files("#file-input", [photo(eval_dir, DOG)])
    open_editor(page, f"{DOG}.jpg")
    button = page.get_by_role("button", name="Download")
    assert in_viewport(page, button) and page.evaluate("window.scrollY") == 0

    hint = page.locator("#format-hint")
    expect(hint).to_have_text("400×330 px, full resolution")
    margin = page.locator("#margin-input")
    expect(margin).to_be_disabled()  # crop is off
    page.locator("#crop-input").check()
    expect(margin).to_be_enabled()
    page.fill("#margin-input", "0")
    expect(hint).to_have_text(re.compile(r"^\d+×\d+ px, full resolution, cropped$"))
    size = tuple(int(n) for n in re.findall(r"\d+", hint.inner_text())[:2])
    assert size != (400, 330)
    assert download(page).size == size  # the hint says what downloads

    page.select_option("#output-input", "mask")
    expect(hint).to_contain_text("alpha mask")
    pixels = page.evaluate(
        """async () => {
          await new Promise((done) => requestAnimationFrame(() => requestAnimationFrame(done)));
          const canvas = document.getElementById("after-canvas");
          const ctx = canvas.getContext("2d");
          return Array.from(ctx.getImageData(0, 0, canvas.width, canvas.height).data);
        }"""
    )
    rgba = [pixels[i : i + 4] for i in range(0, len(pixels), 4 * 97)]
    assert all(r == g == b and a == 255 for r, g, b, a in rgba)  # grey levels, opaque
    assert {r for r, _, _, _ in rgba} >= {0, 255}  # black background, white subject

    # An error from one action is gone after the next one that works.
    page.set_input_files("#background-file", [NOT_AN_IMAGE])
    error = page.locator("#background-error")
    expect(error).to_contain_text("Not a supported image format")
    page.select_option("#output-input", "cutout")
    page.get_by_role("radio", name="Sky blue").check()
    expect(error).to_be_empty()


def test_a_refused_file_offers_dismiss_and_a_busy_server_also_retry(
    page: Page, eval_dir: Path
) -> None:
    sent: list[str] = []
    page.on("request", lambda r: sent.append(r.url) if r.url.endswith("/upload/") else None)
    open_upload(page)
    # Not an image, and a JPEG cut short: sending either again cannot help, so no Retry.
    cut_short = photo(eval_dir, DOG)
    cut_short.update(name="cut.jpg", buffer=cut_short["buffer"][:600])  # type: ignore[index]
    page.set_input_files("#file-input", [NOT_AN_IMAGE, cut_short])
    refused = card(page, "notes.png")
    corrupt = card(page, "cut.jpg")
    for target in (refused, corrupt):
        expect(target).to_have_attribute("data-status", "rejected")
        expect(target.locator(".job-status")).to_have_text(re.compile(r"\.$"))  # a sentence
        expect(target.get_by_role("button", name=re.compile("^Retry"))).to_be_hidden()
        expect(target.get_by_role("button", name=re.compile("^Dismiss"))).to_be_visible()
    expect(refused.locator(".job-status")).to_contain_text("Not a supported image format")
    expect(corrupt.locator(".job-status")).to_contain_text("truncated or corrupt.")
    expect(refused.locator(".stage-steps")).to_be_hidden()
    expect(refused.locator(".progress-row")).to_be_hidden()
    expect(refused.locator(".job-thumbs")).to_be_hidden()
    assert len(sent) == 2
    corrupt.get_by_role("button", name="Dismiss cut.jpg").click()
    expect(corrupt).to_have_count(0)
    refused.get_by_role("button", name="Dismiss notes.png").click()
    expect(refused).to_have_count(0)
    expect(page.locator("#dropzone")).to_be_focused()

    # A busy server passes: Retry sends the file again, and it goes through.
    busy = {"error": "The server is busy. Try again in a moment."}
    page.route("**/upload/", lambda route: route.fulfill(status=503, json=busy))
    page.set_input_files("#file-input", [photo(eval_dir, DOG)])
    waiting = card(page, f"{DOG}.jpg")
    expect(waiting).to_have_attribute("data-status", "rejected")
    expect(waiting.locator(".job-status")).to_have_text(busy["error"])
    retry = waiting.get_by_role("button", name=f"Retry {DOG}.jpg")
    expect(retry).to_be_visible()
    expect(waiting.get_by_role("button", name=f"Dismiss {DOG}.jpg")).to_be_visible()
    page.unroute("**/upload/")
    retry.click()
    wait_done(page, f"{DOG}.jpg")
    # The list has one live region for the whole page, not one per card.
    assert page.locator("[role=status], [aria-live]").count() == 1


DRAG_OVER_PAGE = """
([name, data]) => {
  const transfer = new DataTransfer();
  const bytes = Uint8Array.from(atob(data), (c) => c.charCodeAt(0));
  transfer.items.add(new File([bytes], name, { type: "image/jpeg" }));
  const init = { bubbles: true, cancelable: true, dataTransfer: transfer };
  const target = document.querySelector(".site-footer");
  target.dispatchEvent(new DragEvent("dragenter", init));
  target.dispatchEvent(new DragEvent("dragover", init));
  window.dropTransfer = transfer;
}
"""
DROP_ON_FOOTER = """
() => {
  const init = { bubbles: true, cancelable: true, dataTransfer: window.dropTransfer };
  document.querySelector(".site-footer").dispatchEvent(new DragEvent("drop", init));
}
"""


def test_a_drop_anywhere_on_the_page_is_taken_with_a_cue(
    desktop_page: Page, eval_dir: Path
) -> None:
    page = desktop_page
    open_upload(page)
    expect(page.locator("#dropzone")).to_contain_text("Drop images here")
    data = (eval_dir / "sod" / "images" / f"{FOX}.jpg").read_bytes()
    page.evaluate(DRAG_OVER_PAGE, ["far-away.jpg", base64.b64encode(data).decode()])
    expect(page.locator("#drop-overlay")).to_be_visible()
    expect(page.locator("#drop-overlay")).to_contain_text("Drop your images")
    page.evaluate(DROP_ON_FOOTER)
    expect(page.locator("#drop-overlay")).to_be_hidden()
    expect(card(page, "far-away.jpg")).to_have_attribute("data-job", re.compile("."))


def test_gallery_delete_all_says_what_happened_and_undo_keeps_an_image(
    page: Page, eval_dir: Path
) -> None:
    open_upload(page)
    page.set_input_files("#file-input", [photo(eval_dir, DOG)])
    wait_done(page, f"{DOG}.jpg")
    page.set_input_files("#file-input", [photo(eval_dir, FOX)])
    wait_done(page, f"{FOX}.jpg")
    page.goto("/gallery/")
    expect(page.get_by_role("link", name=f"Open {DOG}.jpg", exact=True)).to_be_visible()
    expect(page.get_by_role("link", name=f"Download PNG of {FOX}.jpg")).to_be_visible()
    cards = page.locator(".gallery-card")
    dog = cards.filter(has_text=f"{DOG}.jpg")
    dog.get_by_role("button", name=f"Delete {DOG}.jpg").click()
    expect(dog).to_be_hidden()
    expect(page.get_by_role("button", name="Undo")).to_be_focused()
    page.keyboard.press("Enter")
    expect(dog).to_be_visible()
    expect(dog.get_by_role("button", name=f"Delete {DOG}.jpg")).to_be_focused()
    page.wait_for_timeout(6500)
    page.reload()
    expect(cards).to_have_count(2)

    page.once("dialog", lambda dialog: dialog.accept())
    page.get_by_role("button", name="Delete all my images").click()
    status = page.locator("#gallery-status")
    expect(status).to_have_text(re.compile(r"^Deleted 2 images and their results\."))
    expect(status).to_be_focused()
    expect(page.get_by_role("heading", name="No images yet")).to_be_visible()


def test_dark_theme_follows_the_system(browser: Browser, server_url: str, eval_dir: Path) -> None:
    page = device_page(browser, server_url, DESKTOP, color_scheme="dark")
    try:
        open_upload(page)
        page.set_input_files("#file-input", [photo(eval_dir, DOG)])
        open_editor(page, f"{DOG}.jpg")
        colours = page.evaluate(
            """() => [document.body, ...[".panel", "#format-input", ".compare", ".dropzone"]
                      .map((selector) => document.querySelector(selector))].filter(Boolean)
                      .map((el) => {
                const style = getComputedStyle(el);
                return [style.backgroundColor, style.color];
            })"""
        )
        for background, text in colours:
            lum_bg = sum(int(n) for n in re.findall(r"\d+", background)[:3]) / 3
            lum_text = sum(int(n) for n in re.findall(r"\d+", text)[:3]) / 3
            assert lum_bg < 80 and lum_text > 170, (background, text)
    finally:
        page.context.close()


def test_leaving_the_page_during_the_undo_time_still_deletes(
    page: Page, eval_dir: Path, media_root: Path
) -> None:
    open_upload(page)
    page.set_input_files("#file-input", [photo(eval_dir, FOX)])
    wait_done(page, f"{FOX}.jpg")
    page.goto("/gallery/")
    fox = page.locator(".gallery-card").filter(has_text=f"{FOX}.jpg")
    folder = media_root / "images" / str(fox.get_attribute("data-image"))
    assert folder.is_dir()
    fox.get_by_role("button", name=f"Delete {FOX}.jpg").click()
    expect(fox).to_be_hidden()
    # Away at once, long before the undo time is over: the page sends the delete as it goes.
    page.get_by_role("link", name="Upload", exact=True).click()
    expect(page.locator("#dropzone")).to_have_attribute("data-ready", "true")
    # (navigator.sendBeacon: Playwright does not report it as a request; the disk tells.)
    for _ in range(50):
        if not folder.exists():
            break
        page.wait_for_timeout(100)
    assert not folder.exists()
    page.goto("/gallery/")
    expect(page.locator(".gallery-card").filter(has_text=f"{FOX}.jpg")).to_have_count(0)


def test_the_editor_fits_the_narrowest_phones_without_sideways_scrolling(
    browser: Browser, server_url: str, eval_dir: Path
) -> None:
    small_phone = {**PHONE, "viewport": {"width": 320, "height": 640}}
    page = device_page(browser, server_url, small_phone)
    try:
        open_upload(page)
        page.set_input_files("#file-input", [photo(eval_dir, FOX)])
        open_editor(page, f"{FOX}.jpg")
        widths = page.evaluate(
            "() => [document.documentElement.scrollWidth, document.documentElement.clientWidth]"
        )
        assert widths[0] <= widths[1], f"the page scrolls sideways: {widths}"
        panel = page.locator(".panel").bounding_box()
        assert panel is not None and panel["x"] + panel["width"] <= 320
        # Every touch-up tool is on screen, inside the panel, none cut off at its edge.
        for label in page.locator(".refine-modes label").all():
            box = label.bounding_box()
            assert box is not None
            assert box["x"] >= panel["x"] and box["x"] + box["width"] <= panel["x"] + panel["width"]
    finally:
        page.context.close()


def test_the_logo_and_breadcrumb_links_are_big_enough_to_tap(
    phone_page: Page, eval_dir: Path
) -> None:
    page = phone_page
    open_upload(page)
    page.set_input_files("#file-input", [photo(eval_dir, FOX)])
    open_editor(page, f"{FOX}.jpg")
    for link in [
        page.locator(".brand"),
        page.locator(".breadcrumb").get_by_role("link", name="Your images"),
    ]:
        box = link.bounding_box()
        assert box and box["height"] >= TOUCH_PX, (link, box)
    page.locator(".breadcrumb").get_by_role("link", name="Your images").tap()
    expect(page).to_have_url(re.compile(r"/gallery/$"))


def test_deleting_the_last_image_hides_delete_all_until_undo(page: Page, eval_dir: Path) -> None:
    open_upload(page)
    page.set_input_files("#file-input", [photo(eval_dir, FOX)])
    wait_done(page, f"{FOX}.jpg")
    page.goto("/gallery/")
    delete_all = page.get_by_role("button", name="Delete all my images")
    expect(delete_all).to_be_visible()
    page.get_by_role("button", name=f"Delete {FOX}.jpg").click()
    # Nothing left to show: "No images yet", and no "Delete all" of no images beside it.
    expect(page.get_by_role("heading", name="No images yet")).to_be_visible()
    expect(delete_all).to_be_hidden()
    page.locator("#toast").get_by_role("button", name="Undo").click()
    expect(page.get_by_role("heading", name="No images yet")).to_be_hidden()
    expect(delete_all).to_be_visible()


LANDSCAPE_PHONE = {"viewport": {"width": 844, "height": 390}, "has_touch": True, "is_mobile": True}


def overlap(a: dict[str, float] | None, b: dict[str, float] | None) -> bool:
    assert a is not None and b is not None
    return not (
        a["x"] + a["width"] <= b["x"]
        or b["x"] + b["width"] <= a["x"]
        or a["y"] + a["height"] <= b["y"]
        or b["y"] + b["height"] <= a["y"]
    )


def test_download_stays_on_screen_on_a_phone_held_sideways(
    browser: Browser, server_url: str, eval_dir: Path, artifacts: Path
) -> None:
    page = device_page(browser, server_url, LANDSCAPE_PHONE)
    open_upload(page)
    page.set_input_files("#file-input", [photo(eval_dir, DOG)])
    open_editor(page, f"{DOG}.jpg")
    bar = page.locator("#download-bar")
    download_button = page.get_by_role("button", name="Download")
    picture = page.locator("#compare-figure")
    # At the top of the page, among the options, and at the very end: Download is on screen,
    # beside the preview, never over it.
    for where in ("top", "options", "end"):
        if where == "options":
            page.locator("#shadow-input").scroll_into_view_if_needed()
        if where == "end":
            page.evaluate("window.scrollTo(0, document.body.scrollHeight)")
        page.wait_for_timeout(100)
        page.screenshot(path=str(artifacts / f"landscape-phone-{where}.png"))
        assert in_viewport(page, download_button), f"Download is off screen ({where})"
        assert not overlap(bar.bounding_box(), picture.bounding_box()), where
    # The end of the page scrolls clear of the bar.
    footer_text = page.locator(".site-footer a").last
    assert not overlap(bar.bounding_box(), footer_text.bounding_box())
    assert download(page).size == (400, 330)
    page.context.close()
