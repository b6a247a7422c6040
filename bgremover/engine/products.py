"""Everything one job keeps, made in one call: the full-resolution cut-out (the source every
later download is rendered from), its mask, and smaller copies for the browser.

``make_products`` writes the files into a folder and returns their paths, so it can run in a
child process (see isolation.py) that hands back only names and numbers, never the pixels.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from bgremover.engine.encode import encode_image, encode_mask
from bgremover.engine.layout import alpha_box
from bgremover.engine.pipeline import RemovalOptions, RenderOptions, remove_background, render

Progress = Callable[[str, float], None]

# Product name → file name. Every product is written for every job.
PRODUCT_FILES = {
    "cutout": "cutout.png",
    "mask": "mask.png",
    "preview_original": "preview-original.jpg",
    "preview_cutout": "preview-cutout.png",
    "thumb_original": "thumb-original.jpg",
    "thumb_cutout": "thumb-cutout.png",
}
# How much of the progress bar each part fills (the rest is the caller's, e.g. storing).
REMOVAL_SHARE = (0.0, 0.86)
RENDER_SHARE = (0.86, 0.96)


@dataclass(frozen=True)
class ProductOptions:
    removal: RemovalOptions = field(default_factory=RemovalOptions)
    preview_side: int = 1600  # longest side of the editor's previews
    thumb_side: int = 360  # longest side of the gallery's thumbnails


@dataclass
class Products:
    files: dict[str, str]  # product name → path of the written file
    subject_box: list[int]  # left, top, right, bottom of alpha > 0; empty when none
    notes: list[str]


def shrunk(pixels: np.ndarray, max_side: int) -> np.ndarray:
    """``pixels`` scaled down (Lanczos) so its longest side is at most ``max_side``."""
    height, width = pixels.shape[:2]
    scale = max_side / max(height, width)
    if scale >= 1:
        return pixels
    size = (max(1, round(width * scale)), max(1, round(height * scale)))
    return np.asarray(Image.fromarray(pixels).resize(size, Image.Resampling.LANCZOS))


def _span(progress: Progress | None, start: float, end: float) -> Progress:
    def report(stage: str, fraction: float) -> None:
        if progress is not None:
            progress(stage, start + (end - start) * max(0.0, min(1.0, fraction)))

    return report


def make_products(
    source: bytes, options: ProductOptions, out_dir: str, progress: Progress | None = None
) -> Products:
    """Cut out ``source`` and write every product into ``out_dir`` (which must exist)."""
    cutout = remove_background(source, options.removal, progress=_span(progress, *REMOVAL_SHARE))
    cutout_png = render(cutout, RenderOptions(), progress=_span(progress, *RENDER_SHARE))
    rgba = cutout.rgba()
    contents = {
        "cutout": cutout_png,
        "mask": encode_mask(cutout.alpha),
        "preview_original": encode_image(shrunk(cutout.original, options.preview_side), "jpeg"),
        "preview_cutout": encode_image(shrunk(rgba, options.preview_side), "png"),
        "thumb_original": encode_image(shrunk(cutout.original, options.thumb_side), "jpeg"),
        "thumb_cutout": encode_image(shrunk(rgba, options.thumb_side), "png"),
    }
    files = {}
    for name, data in contents.items():
        path = os.path.join(out_dir, PRODUCT_FILES[name])
        with open(path, "wb") as out:
            out.write(data)
        files[name] = path
    box = alpha_box(cutout.alpha)
    return Products(files=files, subject_box=list(box or ()), notes=list(cutout.notes))
