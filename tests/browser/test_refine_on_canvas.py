"""Refining by hand while the preview shows a canvas layout (square, subject at 50 %, placed
off centre): a stroke lands on the photo where it was drawn on the laid-out picture, and the
preview still matches the download."""

from __future__ import annotations

import numpy as np
import pytest
from playwright.sync_api import Page

from bgremover.engine.layout import Canvas, alpha_box, plan_layout
from tests.browser.pages import download
from tests.browser.test_preview_matches_download import (
    canvas,
    difference,
    position,
    preview_image,
    scale,
)
from tests.browser.test_refine import CENTRE, HEIGHT, WIDTH, choose_tool, editor, saved

pytestmark = pytest.mark.browser
__all__ = ["editor"]  # the fixture, used by name


def test_a_stroke_on_a_scaled_canvas_lands_where_it_was_drawn(editor: Page) -> None:
    page = editor
    plain = np.asarray(download(page).convert("RGBA"))[..., 3]
    assert plain.shape == (HEIGHT, WIDTH) and plain[CENTRE[1], CENTRE[0]] > 200
    canvas("square")(page)
    scale(50)(page)
    position(25, 75)(page)
    plan = plan_layout(
        WIDTH, HEIGHT, alpha_box(plain), canvas=Canvas("aspect", 1, 1), scale=0.5,
        position=(0.25, 0.75),
    )  # fmt: skip

    def screen(x: float, y: float) -> tuple[float, float]:
        box = page.locator("#after-canvas").bounding_box()
        assert box is not None
        cx, cy = plan.left + plan.scale * (x + 0.5), plan.top + plan.scale * (y + 0.5)
        return box["x"] + cx / plan.width * box["width"], box["y"] + cy / plan.height * box[
            "height"
        ]

    choose_tool(page, "Erase")
    page.mouse.move(*screen(*CENTRE))
    page.mouse.down()
    page.mouse.move(*screen(CENTRE[0], CENTRE[1] + 30), steps=4)
    page.mouse.up()
    saved(page, 1)
    choose_tool(page, "Compare")
    laid_out = download(page)
    assert laid_out.size == (plan.width, plan.height)
    mean, p99 = difference(preview_image(page), laid_out)
    assert mean <= 2.0 and p99 <= 16.0, (mean, p99)
    # Back to the photo's own canvas: the erased line is where it was drawn, on the photo.
    canvas("original")(page)
    scale(None)(page)
    position(None)(page)
    alpha = np.asarray(download(page).convert("RGBA"))[..., 3]
    assert alpha[CENTRE[1] + 15, CENTRE[0]] == 0
    assert alpha[CENTRE[1] + 15, CENTRE[0] + 60] == plain[CENTRE[1] + 15, CENTRE[0] + 60]
