"""The remove.bg-style option strings: what each parses to, and a clear OptionsError for
every bad one."""

from __future__ import annotations

import pytest

from bgremover.engine.colors import CSS_COLORS, parse_color
from bgremover.engine.compose import Background, parse_background
from bgremover.engine.errors import OptionsError
from bgremover.engine.layout import Canvas, Length, Margin
from bgremover.engine.render_options import (
    parse_angle,
    parse_background_color,
    parse_bool,
    parse_canvas,
    parse_channels,
    parse_format,
    parse_margin,
    parse_position,
    parse_roi,
    parse_scale,
    parse_shadow,
    parse_size,
)
from bgremover.engine.shadow import SHADOW_TYPES

px, pc = (lambda v: Length(v, "px")), (lambda v: Length(v, "%"))


@pytest.mark.parametrize(
    "text, rgba",
    [
        ("#1e90ff", (30, 144, 255, 255)),
        ("1e90ff", (30, 144, 255, 255)),
        ("#FFF", (255, 255, 255, 255)),
        ("abc", (170, 187, 204, 255)),
        ("#1e90ff80", (30, 144, 255, 128)),
        ("00000000", (0, 0, 0, 0)),
        ("DodgerBlue", (30, 144, 255, 255)),
        ("rebeccapurple", (102, 51, 153, 255)),
        ("transparent", (0, 0, 0, 0)),
    ],
)
def test_colours(text, rgba):
    assert parse_color(text) == rgba


def test_all_148_css_colour_names():
    assert len(CSS_COLORS) == 148
    assert all(parse_color(name)[3] == 255 for name in CSS_COLORS)


def test_background_colour_keeps_its_alpha():
    assert parse_background_color("#ff000080") == Background("color", (255, 0, 0), opacity=128)
    assert parse_background_color("transparent") == Background()
    assert parse_background("navy") == Background("color", (0, 0, 128))
    assert parse_background("ff000080").opacity == 128


@pytest.mark.parametrize(
    "text, margin",
    [
        ("30px", Margin(px(30), px(30), px(30), px(30))),
        ("10%", Margin(pc(10), pc(10), pc(10), pc(10))),
        ("10px 20%", Margin(px(10), pc(20), px(10), pc(20))),
        ("1px 2px 3px 4px", Margin(px(1), px(2), px(3), px(4))),
        ("0", Margin()),
        ("2.5%", Margin(*(pc(2.5),) * 4)),
    ],
)
def test_margins(text, margin):
    assert parse_margin(text) == margin


def test_scale_position_roi_canvas():
    assert parse_scale("original") is None and parse_scale("80%") == 0.8
    assert parse_scale("10%") == 0.1 and parse_scale("100") == 1.0
    assert parse_position("original") is None and parse_position("center") == (0.5, 0.5)
    assert parse_position("20%") == (0.2, 0.2) and parse_position("20% 70%") == (0.2, 0.7)
    assert parse_roi("0% 0% 100% 100%").box(400, 300) == (0, 0, 400, 300)
    assert parse_roi("10px 20px 110px 220px").box(400, 300) == (10, 20, 110, 220)
    assert parse_roi("25% 10% 75% 90%").box(400, 300) == (100, 30, 300, 270)
    assert parse_canvas("original") == Canvas()
    assert parse_canvas("square") == Canvas("aspect", 1, 1)
    assert parse_canvas("4:5") == Canvas("aspect", 4, 5)
    assert parse_canvas("16:9") == Canvas("aspect", 16, 9)
    assert parse_canvas("1200x800") == Canvas("pixels", 1200, 800)


def test_shadows_and_the_rest():
    assert parse_shadow("none") is None
    assert parse_shadow("drop") == SHADOW_TYPES["drop"]
    shadow = parse_shadow("3D", opacity="35%", softness="5%", direction="45deg", distance="3")
    assert shadow is not None
    assert (shadow.opacity, shadow.softness, shadow.direction, shadow.distance) == (
        35.0,
        0.05,
        45.0,
        0.03,
    )
    assert parse_angle("-90") == -90
    assert parse_size("preview") == 250_000 and parse_size("4k") == 10_000_000
    assert parse_size("50MP") is None
    assert parse_channels("alpha") == "mask" and parse_channels("RGBA") == "cutout"
    assert parse_bool("False") is False and parse_bool("true") is True
    assert parse_format("jpg") == "jpeg" and parse_format("auto", transparent=False) == "jpeg"
    assert parse_format("zip") == "zip"


@pytest.mark.parametrize(
    "parse, text, message",
    [
        (parse_color, "", "colour is empty"),
        (parse_color, "#12", "not a hex colour"),
        (parse_color, "#12345", "not a hex colour"),
        (parse_color, "notacolour", "CSS colour name"),
        (parse_margin, "", "crop margin is empty"),
        (parse_margin, "10em", "not a length"),
        (parse_margin, "1px 2px 3px", "give 1, 2 or 4"),
        (parse_margin, "-5px", "not a length"),
        (parse_scale, "5%", "from 10 % to 100 %"),
        (parse_scale, "120%", "from 10 % to 100 %"),
        (parse_scale, "big", "not a percentage"),
        (parse_scale, "50% 50%", "one value"),
        (parse_position, "left", "not a percentage"),
        (parse_position, "101%", "from 0 % to 100 %"),
        (parse_position, "1% 2% 3%", "one or two"),
        (parse_roi, "0 0 100", "needs 4 values"),
        (parse_roi, "50% 0% 10% 100%", "x2 must be larger"),
        (parse_roi, "0% 0% 100% 120%", "beyond 100 %"),
        (parse_canvas, "round", "not original, square"),
        (parse_canvas, "0x100", "above 0"),
        (parse_canvas, "40000x100", "too large"),
        (parse_canvas, "1:50", "beyond 1:20"),
        (parse_shadow, "soft", "not one of none, drop, 3D or car"),
        (lambda text: parse_shadow("drop", opacity=text), "150", "shadow opacity"),
        (lambda text: parse_shadow("drop", softness=text), "60%", "shadow softness"),
        (lambda text: parse_shadow("drop", direction=text), "north", "angle in degrees"),
        (parse_size, "huge", "preview, small, regular"),
        (parse_channels, "rgb", "rgba or alpha"),
        (parse_bool, "maybe", "true or false"),
        (parse_format, "gif", "auto, png, jpg, webp or zip"),
    ],
)
def test_bad_values_raise_a_clear_options_error(parse, text, message):
    with pytest.raises(OptionsError, match=message):
        parse(text)
