"""The drop shadow: where it falls, how dark it is, and that it is absent when asked."""

from __future__ import annotations

import io

import numpy as np
import pytest
from PIL import Image

from bgremover.engine.compose import Background
from bgremover.engine.pipeline import Cutout, RenderOptions, render_with_info
from bgremover.engine.render_options import parse_shadow, parse_shadow_type
from bgremover.engine.shadow import Shadow, shadow_alpha

WHITE = Background(kind="color", color=(255, 255, 255))


def cutout() -> Cutout:
    photo = np.full((400, 400, 3), 128, np.uint8)
    foreground = photo.copy()
    foreground[150:250, 150:250] = (200, 30, 30)
    alpha = np.zeros((400, 400), np.uint8)
    alpha[150:250, 150:250] = 255
    return Cutout(foreground, alpha, photo)


def pixels(options: RenderOptions) -> np.ndarray:
    content = render_with_info(cutout(), options).content
    return np.asarray(Image.open(io.BytesIO(content))).astype(int)


@pytest.mark.parametrize(
    "direction, probe, opposite",
    [
        (0, (200, 265), (200, 135)),  # right
        (90, (265, 200), (135, 200)),  # down
        (180, (200, 135), (200, 265)),  # left
        (270, (135, 200), (265, 200)),  # up
    ],
)
def test_shadow_falls_in_the_asked_direction(direction, probe, opposite):
    # distance 20 % of the 100 px subject: 20 px; softness 2 %: sigma 2 px.
    shadow = Shadow(direction=direction, distance=0.2, softness=0.02, opacity=60)
    out = pixels(RenderOptions(background=WHITE, shadow=shadow))
    # 15 px beyond the subject on the shadow's side: black at 60 % over white.
    assert np.abs(out[probe] - round(255 * 0.4)).max() <= 3
    assert (out[opposite] == 255).all()  # nothing on the other side
    assert tuple(out[200, 200]) == (200, 30, 30)  # the subject stays on top


@pytest.mark.parametrize("opacity", [20, 50, 90])
def test_shadow_opacity_sets_its_darkness(opacity):
    shadow = Shadow(direction=90, distance=0.2, softness=0.02, opacity=opacity)
    out = pixels(RenderOptions(background=WHITE, shadow=shadow))
    assert abs(out[258, 200, 0] - 255 * (1 - opacity / 100)) <= 3


def test_shadow_is_soft_at_its_edge():
    shadow = Shadow(direction=90, distance=0.2, softness=0.05, opacity=100)
    out = pixels(RenderOptions(background=WHITE, shadow=shadow))
    column = out[250:300, 200, 0]
    # From dark under the subject to white below, through greys: a gradient, not a step.
    assert column[5] < 40 and column[-1] > 240
    assert len({int(v) for v in column if 40 < v < 215}) >= 5


def test_shadow_over_transparent_adds_to_the_alpha():
    shadow = Shadow(direction=0, distance=0.2, softness=0.02, opacity=50)
    out = pixels(RenderOptions(shadow=shadow))
    assert out.shape[2] == 4
    assert abs(out[200, 265, 3] - 128) <= 3 and tuple(out[200, 265, :3]) == (0, 0, 0)
    assert out[200, 135, 3] == 0 and out[200, 200, 3] == 255


@pytest.mark.parametrize("spec", [("none", None), ("drop", 0)])
def test_no_shadow_for_none_or_opacity_zero(spec):
    kind, opacity = spec
    shadow = parse_shadow(kind, opacity=opacity)
    assert shadow is None
    plain = pixels(RenderOptions(background=WHITE))
    assert (pixels(RenderOptions(background=WHITE, shadow=shadow)) == plain).all()
    assert shadow_alpha(cutout().alpha, Shadow(opacity=0), 100) is None


@pytest.mark.parametrize("kind", ["drop", "3D", "car"])
def test_remove_bg_shadow_types_are_drop_shadows_below(kind):
    shadow = parse_shadow(kind, opacity=80)
    assert shadow is not None and shadow.opacity == 80
    out = pixels(RenderOptions(background=WHITE, shadow=shadow))
    below, above = out[250:254, 160:240, 0].mean(), out[146:150, 160:240, 0].mean()
    assert below < 230 and below < above - 20
    assert parse_shadow_type("3d") == parse_shadow_type("3D")


def test_shadow_follows_a_scaled_subject():
    from bgremover.engine.render_options import parse_canvas

    shadow = Shadow(direction=90, distance=0.1, softness=0.0, opacity=100)
    options = RenderOptions(
        background=WHITE, canvas=parse_canvas("square"), scale=0.5, shadow=shadow
    )
    out = pixels(options)
    # Subject 200 px, centred at 100..300; shadow 20 px lower, hard-edged.
    assert out[310, 200, 0] == 0 and out[325, 200, 0] == 255
