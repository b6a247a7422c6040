"""Generate the preset background photos shipped in static/backgrounds/.

They are made here from numpy noise and gradients (no third-party images, so no licence
questions). Deterministic: the same seed gives the same files. Run from the repo root:

    .venv/bin/python tools/make_backgrounds.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageFilter

WIDTH, HEIGHT = 1280, 854
OUT = Path(__file__).resolve().parent.parent / "static" / "backgrounds"


def _grid() -> tuple[np.ndarray, np.ndarray]:
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    return x / (WIDTH - 1), y / (HEIGHT - 1)


def _lerp_colors(t: np.ndarray, stops: list[tuple[float, tuple[int, int, int]]]) -> np.ndarray:
    positions = np.array([p for p, _ in stops], dtype=np.float32)
    colors = np.array([c for _, c in stops], dtype=np.float32)
    return np.stack([np.interp(t, positions, colors[:, i]) for i in range(3)], axis=-1)


def _grain(rng: np.random.Generator, amount: float) -> np.ndarray:
    return rng.normal(0, amount, (HEIGHT, WIDTH, 1)).astype(np.float32)


def studio(rng: np.random.Generator) -> np.ndarray:
    """Soft grey studio sweep: light centre, darker corners."""
    x, y = _grid()
    distance = np.sqrt(((x - 0.5) * 1.3) ** 2 + (y - 0.42) ** 2)
    tone = 236 - 95 * np.clip(distance, 0, 1) ** 1.6
    return np.repeat(tone[..., None], 3, axis=2) + np.array([0, 1, 4]) + _grain(rng, 1.5)


def sunset(rng: np.random.Generator) -> np.ndarray:
    """Evening sky: deep violet above, pink, then warm orange near the horizon."""
    x, y = _grid()
    stops = [
        (0.0, (52, 38, 99)),
        (0.45, (196, 84, 130)),
        (0.75, (250, 150, 96)),
        (1.0, (255, 206, 140)),
    ]
    sky = _lerp_colors(y + 0.05 * np.sin(x * 3.1), stops)
    sun = np.exp(-(((x - 0.7) / 0.12) ** 2 + ((y - 0.82) / 0.09) ** 2))[..., None]
    return sky + sun * np.array([60, 50, 20]) + _grain(rng, 1.5)


def bokeh(rng: np.random.Generator) -> np.ndarray:
    """Night-city bokeh: blurred discs of warm and cool light on a dark blue ground."""
    _, y = _grid()
    ground = _lerp_colors(y, [(0.0, (14, 20, 40)), (1.0, (32, 28, 54))])
    palette = [(255, 190, 90), (255, 120, 80), (120, 190, 255), (255, 230, 170), (200, 120, 255)]
    pixels = np.zeros((HEIGHT, WIDTH, 3), dtype=np.float32)
    yy, xx = np.mgrid[0:HEIGHT, 0:WIDTH].astype(np.float32)
    for _ in range(70):
        cx, cy = rng.uniform(0, WIDTH), rng.uniform(0, HEIGHT * 0.9)
        radius = rng.uniform(18, 70)
        disc = np.clip(radius - np.sqrt((xx - cx) ** 2 + (yy - cy) ** 2), 0, 2) / 2
        color = np.array(palette[rng.integers(len(palette))], dtype=np.float32)
        pixels += disc[..., None] * color * rng.uniform(0.25, 0.6)
    lights = Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8))
    lights = lights.filter(ImageFilter.GaussianBlur(6))
    return ground + np.asarray(lights, dtype=np.float32) + _grain(rng, 2.0)


def mint(rng: np.random.Generator) -> np.ndarray:
    """Pastel mint with large soft blobs of aqua and lemon."""
    x, y = _grid()
    base = _lerp_colors(x * 0.6 + y * 0.4, [(0.0, (206, 240, 226)), (1.0, (176, 226, 214))])
    for cx, cy, sx, sy, color in [
        (0.2, 0.3, 0.25, 0.3, (120, 210, 220)),
        (0.8, 0.7, 0.3, 0.25, (250, 240, 170)),
        (0.55, 0.15, 0.2, 0.15, (160, 230, 190)),
    ]:
        blob = np.exp(-(((x - cx) / sx) ** 2 + ((y - cy) / sy) ** 2))[..., None]
        base = base * (1 - 0.7 * blob) + np.array(color) * 0.7 * blob
    return base + _grain(rng, 1.2)


def concrete(rng: np.random.Generator) -> np.ndarray:
    """Smooth concrete wall: multi-scale grey noise with a faint warm tint."""
    tone = np.zeros((HEIGHT, WIDTH), dtype=np.float32)
    for scale, weight in [(160, 14.0), (40, 8.0), (8, 4.0)]:
        small = rng.normal(0, 1, (HEIGHT // scale + 2, WIDTH // scale + 2)).astype(np.float32)
        layer = Image.fromarray(small, mode="F").resize((WIDTH, HEIGHT), Image.BICUBIC)
        tone += weight * np.asarray(layer)
    tone += 178
    return np.repeat(tone[..., None], 3, axis=2) + np.array([4, 1, -3]) + _grain(rng, 3.0)


def ocean(rng: np.random.Generator) -> np.ndarray:
    """Calm sea under a pale sky: a soft horizon and gentle horizontal ripples."""
    x, y = _grid()
    sky = _lerp_colors(y / 0.55, [(0.0, (150, 196, 230)), (1.0, (222, 236, 244))])
    sea_t = np.clip((y - 0.55) / 0.45, 0, 1)
    sea = _lerp_colors(sea_t, [(0.0, (90, 160, 190)), (1.0, (20, 80, 120))])
    ripple = (np.sin(y * 260 + np.sin(x * 9) * 2.0) * 6 * sea_t)[..., None]
    horizon = np.clip((y - 0.55) / 0.01, 0, 1)[..., None]
    return sky * (1 - horizon) + (sea + ripple) * horizon + _grain(rng, 1.5)


PRESETS = {
    "studio": studio,
    "sunset": sunset,
    "bokeh": bokeh,
    "mint": mint,
    "concrete": concrete,
    "ocean": ocean,
}


def main() -> None:
    OUT.mkdir(parents=True, exist_ok=True)
    for index, (name, make) in enumerate(PRESETS.items()):
        pixels = np.clip(make(np.random.default_rng(index)), 0, 255).astype(np.uint8)
        image = Image.fromarray(pixels)
        image.save(OUT / f"{name}.jpg", quality=84, optimize=True, progressive=True)
        image.resize((192, 128), Image.LANCZOS).save(
            OUT / f"{name}-thumb.jpg", quality=80, optimize=True
        )
        print(f"{name}: {(OUT / f'{name}.jpg').stat().st_size // 1024} KB")


if __name__ == "__main__":
    main()
