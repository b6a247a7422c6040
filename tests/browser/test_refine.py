"""Refining by hand in a real browser: smart Keep / Remove marks drawn with the mouse, Erase
shown at once, undo / redo / reset by button and keyboard, the parts list, a finger's
stroke and a pinch on a touch screen, and a preview that matches the download after edits.

Every check on the result reads the file the Download button gives (the server's render at
full resolution), at the places the test drew."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from playwright.sync_api import Browser, Page, Route, expect

from tests.browser.pages import DOG, download, open_editor, photo, upload_with_picker
from tests.browser.test_preview_matches_download import difference, preview_image

pytestmark = pytest.mark.browser

# The dog photo is 400×330: the dog in the middle, grass at every corner.
WIDTH, HEIGHT = 400, 330
CENTRE = (200, 170)
CORNER = (30, 30)
FAR_CORNER = (370, 300)
TOP_EDGE = (170, 18)  # grass well away from the dog
# A save includes the engine's first (compiling) run in a fresh server.
SAVE_TIMEOUT_MS = 60_000


def screen_point(page: Page, x: float, y: float) -> tuple[float, float]:
    """Where the full-resolution pixel (x, y) is on screen (no crop, no zoom)."""
    box = page.locator("#after-canvas").bounding_box()
    assert box is not None
    return box["x"] + (x + 0.5) / WIDTH * box["width"], box["y"] + (y + 0.5) / HEIGHT * box[
        "height"
    ]


def choose_tool(page: Page, name: str) -> None:
    page.get_by_role("radio", name=name, exact=True).check()


def draw(page: Page, points: list[tuple[float, float]]) -> None:
    """A mouse stroke through full-resolution ``points``."""
    page.mouse.move(*screen_point(page, *points[0]))
    page.mouse.down()
    for point in points[1:]:
        page.mouse.move(*screen_point(page, *point), steps=4)
    page.mouse.up()


def saved(page: Page, count: int) -> None:
    """Wait for the server's answer to a change (the status says so each time)."""
    tools = page.locator("#refine-tools")
    expect(tools).to_have_attribute("data-saves", str(count), timeout=SAVE_TIMEOUT_MS)
    expect(page.locator("#compare")).not_to_have_class(re.compile(r"\bis-busy\b"))
    expect(page.locator("#refine-status")).not_to_have_text("")


def alpha_of(page: Page) -> np.ndarray:
    image = download(page).convert("RGBA")
    assert image.size == (WIDTH, HEIGHT)
    return np.asarray(image)[..., 3]


@pytest.fixture
def editor(page: Page, eval_dir: Path) -> Page:
    upload_with_picker(page, [photo(eval_dir, DOG)])
    open_editor(page, f"{DOG}.jpg")
    return page


def test_keep_and_remove_marks_change_the_download_where_drawn(editor: Page) -> None:
    page = editor
    automatic = alpha_of(page)
    assert automatic[CENTRE[1], CENTRE[0]] > 200 and automatic[CORNER[1], CORNER[0]] < 30

    choose_tool(page, "Remove")
    draw(page, [CENTRE, (CENTRE[0] + 15, CENTRE[1])])
    saved(page, 1)
    choose_tool(page, "Keep")
    draw(page, [CORNER])
    saved(page, 2)
    alpha = alpha_of(page)
    assert alpha[CENTRE[1], CENTRE[0]] == 0 and alpha[CENTRE[1], CENTRE[0] + 15] == 0
    assert alpha[CORNER[1], CORNER[0]] == 255

    page.get_by_role("button", name="Undo").click()
    saved(page, 3)
    alpha = alpha_of(page)
    assert alpha[CORNER[1], CORNER[0]] < 30 and alpha[CENTRE[1], CENTRE[0]] == 0
    page.keyboard.press("Control+Shift+Z")
    saved(page, 4)
    assert alpha_of(page)[CORNER[1], CORNER[0]] == 255
    page.keyboard.press("Control+Z")
    page.keyboard.press("Control+Z")
    saved(page, 6)
    assert np.array_equal(alpha_of(page), automatic)

    page.get_by_role("button", name="Redo").click()
    saved(page, 7)
    page.get_by_role("button", name="Reset").click()
    saved(page, 8)
    assert np.array_equal(alpha_of(page), automatic)
    expect(page.get_by_role("button", name="Redo")).to_be_disabled()

    page.reload()  # edits are stored with the image
    expect(page.locator("#compare")).to_have_attribute("data-ready", "true")
    page.get_by_role("button", name="Undo").is_disabled()


def test_edits_survive_a_reload_and_the_preview_matches_the_download(editor: Page) -> None:
    page = editor
    choose_tool(page, "Erase")
    draw(page, [CENTRE, (CENTRE[0], CENTRE[1] + 30)])
    saved(page, 1)
    choose_tool(page, "Restore")
    draw(page, [FAR_CORNER])
    saved(page, 2)
    page.reload()
    expect(page.locator("#compare")).to_have_attribute("data-ready", "true")
    choose_tool(page, "Compare")
    downloaded = download(page)
    alpha = np.asarray(downloaded.convert("RGBA"))[..., 3]
    assert alpha[CENTRE[1] + 15, CENTRE[0]] == 0 and alpha[FAR_CORNER[1], FAR_CORNER[0]] == 255
    mean, p99 = difference(preview_image(page), downloaded)
    assert mean <= 2.0 and p99 <= 16.0, (mean, p99)


def test_erase_shows_while_drawing(editor: Page) -> None:
    page = editor
    choose_tool(page, "Erase")
    before = np.asarray(preview_image(page).convert("RGBA"))
    page.mouse.move(*screen_point(page, *CENTRE))
    page.mouse.down()
    page.mouse.move(*screen_point(page, CENTRE[0] + 20, CENTRE[1]), steps=3)
    during = np.asarray(preview_image(page).convert("RGBA"))  # the button is still down
    page.mouse.up()
    scale = before.shape[1] / WIDTH
    x, y = round(CENTRE[0] * scale), round(CENTRE[1] * scale)
    assert before[y, x, 3] > 200 and during[y, x, 3] < 40


def test_a_stray_part_is_listed_and_removed_with_one_click(editor: Page) -> None:
    page = editor
    choose_tool(page, "Restore")
    draw(page, [TOP_EDGE])  # a stray piece of grass, apart from the dog
    saved(page, 1)
    parts = page.locator("#parts-list .part")
    expect(parts).to_have_count(2)
    page.get_by_role("button", name="Remove part 2").click()
    saved(page, 2)
    expect(page.get_by_role("button", name="Bring back part 2")).to_be_visible()
    alpha = alpha_of(page)
    assert alpha[TOP_EDGE[1], TOP_EDGE[0]] == 0 and alpha[CENTRE[1], CENTRE[0]] > 200
    page.get_by_role("button", name="Bring back part 2").click()
    saved(page, 3)
    assert alpha_of(page)[TOP_EDGE[1], TOP_EDGE[0]] == 255


def touch(session: object, kind: str, points: list[tuple[float, float]]) -> None:
    session.send(  # type: ignore[attr-defined]
        "Input.dispatchTouchEvent",
        {
            "type": kind,
            "touchPoints": [{"x": x, "y": y, "id": i} for i, (x, y) in enumerate(points)],
        },
    )


def test_a_finger_draws_a_mark_and_two_fingers_pinch_to_zoom(
    browser: Browser, server_url: str, eval_dir: Path
) -> None:
    context = browser.new_context(
        base_url=server_url,
        accept_downloads=True,
        viewport={"width": 390, "height": 844},
        has_touch=True,
        is_mobile=True,
        device_scale_factor=2,
    )
    context.set_default_timeout(30_000)
    page = context.new_page()
    try:
        upload_with_picker(page, [photo(eval_dir, DOG)])
        open_editor(page, f"{DOG}.jpg")
        choose_tool(page, "Remove")
        session = page.context.new_cdp_session(page)
        start, end = screen_point(page, *CENTRE), screen_point(page, CENTRE[0] + 20, CENTRE[1])
        touch(session, "touchStart", [start])
        touch(session, "touchMove", [end])
        touch(session, "touchEnd", [])
        saved(page, 1)
        assert alpha_of(page)[CENTRE[1], CENTRE[0]] == 0

        choose_tool(page, "Keep")
        left, right = screen_point(page, 150, 165), screen_point(page, 250, 165)
        touch(session, "touchStart", [left, right])
        touch(session, "touchMove", [(left[0] - 60, left[1]), (right[0] + 60, right[1])])
        touch(session, "touchEnd", [])
        transform = page.locator("#after-canvas").evaluate("canvas => canvas.style.transform")
        assert "scale(" in transform
        expect(page.locator("#refine-tools")).to_have_attribute("data-saves", "1")  # no mark
    finally:
        context.close()


BAG = "dis5k_1-Accessories-1-Bag-2339506821_83cf9f1d22_o"  # 1944×2592: previews are smaller


def test_edits_on_a_photo_larger_than_its_preview_still_match_the_download(
    page: Page, eval_dir: Path
) -> None:
    upload_with_picker(page, [photo(eval_dir, BAG)])
    open_editor(page, f"{BAG}.jpg")
    full = (1944, 2592)

    def at(x: float, y: float) -> tuple[float, float]:
        box = page.locator("#after-canvas").bounding_box()
        assert box is not None
        return box["x"] + x / full[0] * box["width"], box["y"] + y / full[1] * box["height"]

    for tool, points in (
        ("Remove", [(970, 1300), (1000, 1500)]),
        ("Keep", [(150, 150)]),
        ("Erase", [(1500, 2300), (1600, 2300)]),
    ):
        choose_tool(page, tool)
        page.mouse.move(*at(*points[0]))
        page.mouse.down()
        for point in points[1:]:
            page.mouse.move(*at(*point), steps=4)
        page.mouse.up()
        saved(page, ["Remove", "Keep", "Erase"].index(tool) + 1)
    choose_tool(page, "Compare")
    downloaded = download(page)
    assert downloaded.size == full
    alpha = np.asarray(downloaded.convert("RGBA"))[..., 3]
    assert alpha[1300, 970] == 0 and alpha[150, 150] == 255
    mean, p99 = difference(preview_image(page), downloaded)
    assert mean <= 2.0 and p99 <= 16.0, (mean, p99)


def test_tools_size_and_zoom_answer_the_keyboard(editor: Page) -> None:
    page = editor
    page.locator("h1").click()  # focus on the page, not a control
    page.keyboard.press("k")
    expect(page.get_by_role("radio", name="Keep", exact=True)).to_be_checked()
    page.keyboard.press("]")
    expect(page.locator("#brush-size")).to_have_value("18")
    page.keyboard.press("[")
    page.keyboard.press("[")
    expect(page.locator("#brush-size")).to_have_value("14")
    page.keyboard.press("+")
    after = page.locator("#after-canvas")
    assert "scale(" in after.evaluate("canvas => canvas.style.transform")
    page.keyboard.press("0")
    assert after.evaluate("canvas => canvas.style.transform") == ""
    for key, tool in (("r", "Remove"), ("e", "Erase"), ("b", "Restore"), ("Escape", "Compare")):
        page.keyboard.press(key)
        expect(page.get_by_role("radio", name=tool, exact=True)).to_be_checked()


def test_a_download_pressed_while_a_touch_up_is_saving_includes_it(editor: Page) -> None:
    page = editor
    # The save is held back, as a slow server would, while Download is pressed.
    held: list[Route] = []
    page.route("**/edits/", lambda route: held.append(route))
    choose_tool(page, "Erase")
    page.locator("#brush-size").fill("40")
    draw(page, [CENTRE, (CENTRE[0] + 20, CENTRE[1])])  # through the dog
    page.wait_for_timeout(300)
    assert len(held) == 1
    with page.expect_download() as info:
        page.get_by_role("button", name="Download").click()
        page.wait_for_timeout(500)
        expect(page.locator("#download-button")).to_have_text("Rendering…")
        held[0].continue_()
    image = Image.open(info.value.path()).convert("RGBA")
    image.load()
    assert np.asarray(image)[CENTRE[1], CENTRE[0] + 10, 3] == 0, "the erased dog came back"
