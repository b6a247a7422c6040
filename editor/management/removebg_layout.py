"""``manage.py removebg``'s canvas and shadow options: the arguments, and RenderOptions'
fields from their strings (parsed by the engine's render_options, as the remove.bg API's)."""

from __future__ import annotations

from argparse import ArgumentParser
from collections.abc import Callable
from typing import Any

from django.core.management.base import CommandError

from bgremover.engine import render_options
from bgremover.engine.errors import EngineError


def add_layout_arguments(parser: ArgumentParser) -> None:
    layout = parser.add_argument_group(
        "canvas and shadow",
        "Where the subject goes on the output, as remove.bg lays it out, and a soft shadow "
        "under it, e.g. --canvas square --scale 80% --shadow --background '#ffffff'",
    )
    layout.add_argument(
        "--canvas",
        metavar="SIZE",
        help="original (default), square, 4:5, 16:9 (any W:H: the photo padded to that "
        "shape) or WxH pixels such as 1200x800",
    )
    layout.add_argument(
        "--scale",
        metavar="PERCENT",
        help="the subject's size on the canvas, 10%%-100%% (100%%: its longer side fills "
        "the canvas), or original (default)",
    )
    layout.add_argument(
        "--position",
        metavar="POS",
        help="center, original, or percentages '20%%' / '20%% 70%%' (horizontal, "
        "vertical; 0%% left/top, 100%% right/bottom); default: center with --scale",
    )
    layout.add_argument(
        "--shadow",
        action="store_true",
        help="a soft drop shadow under the subject (any --shadow-* option implies it)",
    )
    layout.add_argument(
        "--shadow-type",
        metavar="TYPE",
        help="drop (default), 3D or car: remove.bg's shadow kinds, each a drop shadow "
        "with its own direction, distance and softness",
    )
    layout.add_argument("--shadow-opacity", metavar="PERCENT", help="0-100%% (default 50%%)")
    layout.add_argument(
        "--shadow-softness",
        metavar="PERCENT",
        help="blur, in %% of the subject's longer side, 0-50%% (default 3%%)",
    )
    layout.add_argument(
        "--shadow-direction",
        metavar="DEGREES",
        help="where it falls: 0 right, 90 down (default), 180 left, 270 up",
    )
    layout.add_argument(
        "--shadow-distance",
        metavar="PERCENT",
        help="how far it falls, in %% of the subject's longer side (default 2%%)",
    )
    layout.add_argument(
        "--roi",
        metavar="'X1 Y1 X2 Y2'",
        help="region of interest in px or %% (e.g. '0%% 0%% 50%% 100%%'): the subject is "
        "only what lies inside it",
    )
    layout.add_argument(
        "--size",
        metavar="NAME",
        help="largest output, as remove.bg names it: preview (0.25 MP), medium (1.5 MP), "
        "hd (4 MP), 4k (10 MP) or full (default: no limit); downscaled to fit",
    )
    layout.add_argument(
        "--hard-edges",
        action="store_true",
        help="no semi-transparency: every pixel opaque or transparent but a thin "
        "anti-aliased outline (remove.bg's semitransparency=false)",
    )


def layout_options(options: dict[str, Any], output: str) -> dict[str, Any]:
    """RenderOptions' canvas, scale, position, shadow, roi, size cap and hard edges from the
    command line's strings."""

    def parsed(name: str, parse: Callable[[str], Any], text: str) -> Any:
        try:
            return parse(text)
        except EngineError as exc:
            raise CommandError(f"--{name.replace('_', '-')}: {exc}") from exc

    layout: dict[str, Any] = {}
    for name, parse in (
        ("canvas", render_options.parse_canvas),
        ("scale", render_options.parse_scale),
        ("position", render_options.parse_position),
        ("roi", render_options.parse_roi),
        ("size", render_options.parse_size),
    ):
        if options[name] is not None:
            layout[name] = parsed(name, parse, options[name])
    if "size" in layout:
        layout["max_pixels"] = layout.pop("size")
    if options["hard_edges"]:
        layout["semitransparency"] = False
    settings = {
        key: options[f"shadow_{key}"]
        for key in ("opacity", "softness", "direction", "distance")
        if options[f"shadow_{key}"] is not None
    }
    wanted = options["shadow"] or options["shadow_type"] is not None or settings
    if not wanted:
        return layout
    if output == "mask":
        raise CommandError("--shadow has no effect with --output mask: leave it out")
    shadow_type = options["shadow_type"] or "drop"
    if shadow_type.strip().lower() == "none":
        return layout
    # Each part read on its own: a refusal names its option.
    layout["shadow"] = render_options.parse_shadow(
        shadow_type,
        **settings,
        read=lambda name, parse, text: parsed(f"shadow_{name}", parse, text),
    )
    return layout
