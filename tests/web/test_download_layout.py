"""The editor's download with canvas, subject size and place, and shadow (RenderForm's
fields, results.render_options_from_choice), and the refusals of bad values."""

from __future__ import annotations

import numpy as np
import pytest
from django.test import Client

from editor.forms import RenderForm
from editor.models import Image
from tests.web.client import decode

pytestmark = [pytest.mark.django_db, pytest.mark.usefixtures("real_weights")]


def box(alpha: np.ndarray) -> tuple[int, int, int, int]:
    """(left, top, width, height) of alpha > 0."""
    rows, cols = np.flatnonzero(alpha.any(axis=1)), np.flatnonzero(alpha.any(axis=0))
    return cols[0], rows[0], cols[-1] - cols[0] + 1, rows[-1] - rows[0] + 1


def test_canvas_scale_position_and_shadow_reach_the_download(
    client: Client, processed: Image
) -> None:
    url = f"/images/{processed.id}/download/"
    width, height = processed.width, processed.height
    side = max(width, height)

    square = decode(client.get(url, {"canvas": "square"}).content)
    assert square.size == (side, side) and square.mode == "RGBA"

    scaled = client.get(
        url, {"canvas": "4:5", "scale": "50", "position_x": "0", "position_y": "100"}
    )
    assert scaled.status_code == 200
    pixels = np.asarray(decode(scaled.content))
    assert abs(pixels.shape[0] / pixels.shape[1] - 5 / 4) < 0.01
    left, top, w, h = box(pixels[..., 3])
    # Area averaging may fade a faint outermost column or row of the subject to nothing.
    assert left <= 1 and pixels.shape[0] - 1 <= top + h <= pixels.shape[0]
    assert abs(max(w / pixels.shape[1], h / pixels.shape[0]) - 0.5) < 0.01

    custom = decode(
        client.get(url, {"canvas": "custom", "canvas_width": "300", "canvas_height": "200"}).content
    )
    assert custom.size == (300, 200)

    plain = {"background": "color", "color": "#ffffff", "format": "png", "scale": "80"}
    without = np.asarray(decode(client.get(url, plain).content)).astype(int)
    shaded = {**plain, "shadow": "on", "shadow_opacity": "90", "shadow_distance": "10"}
    with_shadow = np.asarray(decode(client.get(url, shaded).content)).astype(int)
    assert with_shadow.shape == without.shape and with_shadow.shape[2] == 3
    darker = (without - with_shadow).max(axis=2)
    assert darker.max() > 100  # a shadow where there was white
    assert (with_shadow <= without + 1).all()  # it only darkens

    # Shadow opacity 0 or the mask output: no shadow.
    zero = {**shaded, "shadow_opacity": "0"}
    assert np.array_equal(np.asarray(decode(client.get(url, zero).content)).astype(int), without)
    mask = decode(client.get(url, {"output": "mask", "shadow": "on", "canvas": "square"}).content)
    assert mask.mode == "L" and mask.size == (side, side)


def test_render_form_defaults_and_cleaned_values() -> None:
    form = RenderForm({})
    assert form.is_valid()
    data = form.cleaned_data
    assert data["canvas"] == "original" and data["scale"] is None and data["position_x"] is None
    assert data["shadow"] is False and data["shadow_direction"] == 90
    form = RenderForm({"canvas": "16:9", "scale": "35", "shadow": "on", "shadow_softness": "7"})
    assert form.is_valid(), form.errors
    assert form.cleaned_data["scale"] == 35 and form.cleaned_data["shadow_softness"] == 7


BAD_LAYOUT_OPTIONS = [
    ({"canvas": "3:2"}, "Canvas must be original, square, 4:5, 16:9 or custom."),
    ({"canvas": "custom"}, "Give the custom canvas's width and height in pixels."),
    (
        {"canvas": "custom", "canvas_width": "0", "canvas_height": "5"},
        "Canvas width must be a whole number from 1 to 10000 px.",
    ),
    (
        {"canvas": "custom", "canvas_width": "50", "canvas_height": "20000"},
        "Canvas height must be a whole number from 1 to 10000 px.",
    ),
    ({"scale": "5"}, "Subject size must be a whole number from 10 to 100 %."),
    ({"scale": "big"}, "Subject size must be a whole number from 10 to 100 %."),
    ({"position_x": "20"}, "Give both positions, horizontal and vertical, or neither."),
    (
        {"position_x": "120", "position_y": "0"},
        "Horizontal position must be a whole number from 0 to 100 %.",
    ),
    (
        {"shadow": "on", "shadow_opacity": "101"},
        "Shadow opacity must be a whole number from 0 to 100 %.",
    ),
    (
        {"shadow": "on", "shadow_direction": "-5"},
        "Shadow direction must be a whole number from 0 to 359 degrees.",
    ),
    (
        {"shadow": "on", "shadow_softness": "x"},
        "Shadow softness must be a whole number from 0 to 50 %.",
    ),
]


@pytest.mark.parametrize("params, message", BAD_LAYOUT_OPTIONS)
def test_bad_layout_options_get_a_400_with_a_message(
    client: Client, processed: Image, params: dict[str, str], message: str
) -> None:
    response = client.get(f"/images/{processed.id}/download/", params)
    assert response.status_code == 400, params
    assert response.json()["error"] == message
