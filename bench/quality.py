"""Quality: write one 8-bit alpha PNG per evaluation item, then score the folder with score.py.

Scoring goes through the reference scorer's own ``score_sod`` / ``score_matting``,
so the numbers agree with ``score.py --json`` by construction.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from types import ModuleType

import numpy as np
from PIL import Image

from bench.data import EvalSplit

AlphaPredictor = Callable[[Path], np.ndarray]
"""Image path → H×W uint8 alpha at the image's size."""


def write_predictions(predict: AlphaPredictor, images: list[Path], out_dir: Path) -> float:
    """Save ``predict(image)`` as ``out_dir/<stem>.png``; return the seconds it took."""
    out_dir.mkdir(parents=True, exist_ok=True)
    started = time.perf_counter()
    for image in images:
        alpha = predict(image)
        if alpha.dtype != np.uint8 or alpha.ndim != 2:
            raise TypeError(
                f"{image.name}: predictor returned {alpha.dtype} {alpha.shape}, "
                "expected an H×W uint8 alpha"
            )
        Image.fromarray(alpha, mode="L").save(out_dir / f"{image.stem}.png")
    return time.perf_counter() - started


def score_folder(scorer: ModuleType, kind: str, pred_dir: Path, split: EvalSplit) -> dict:
    """score.py's result for ``pred_dir`` (matting: whole image and the large trimaps' band)."""
    if kind == "sod":
        return scorer.score_sod(pred_dir, split.sod_masks)
    return scorer.score_matting(pred_dir, split.matting_alpha, split.matting_trimaps)


def run_quality(
    methods: dict[str, dict[str, AlphaPredictor]],
    split: EvalSplit,
    scorer: ModuleType,
    workdir: Path,
    log: Callable[[str], None] = print,
) -> dict[str, dict[str, dict]]:
    """Predict and score each ``methods[kind][name]``; kind is "sod" or "matting".

    Returns ``{kind: {name: score.py's dict + "seconds" + "per_image_s"}}``.
    """
    images = {"sod": split.sod_images, "matting": split.matting_images}
    results: dict[str, dict[str, dict]] = {}
    for kind, predictors in methods.items():
        results[kind] = {}
        for name, predict in predictors.items():
            log(f"quality: {kind} / {name} on {len(images[kind])} images")
            pred_dir = workdir / kind / name
            seconds = write_predictions(predict, images[kind], pred_dir)
            scores = score_folder(scorer, kind, pred_dir, split)
            results[kind][name] = {
                **scores,
                "seconds": seconds,
                "per_image_s": seconds / max(len(images[kind]), 1),
            }
    return results
