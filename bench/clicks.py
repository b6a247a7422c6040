"""``python -m bench.clicks [--quick]``: smart marks measured by a simulated user.

The standard protocol of interactive segmentation: start from the automatic cut-out; at each
step find the largest connected error region (prediction ≥ 0.5 XOR ground truth ≥ 0.5), put a
round mark (radius 1.5 % of the image diagonal, at least 5 px) at its interior point farthest
from its border, keep if it is missed subject, remove if it is kept background, and run
``apply_hints`` again with all marks so far. NoC@90 / NoC@95: marks needed to reach IoU
0.90 / 0.95 (at most 20; a photo that never does counts 20), over the SOD photos whose
automatic IoU is below 0.95. Beside it a plain brush: the same protocol with the marks painted
straight into the automatic alpha; and the protocol's bound for a spread (``perfect_spread``:
each mark fixes exactly the mistake it lies in, marks kept hard). On the matting set: SAD
(score.py's) before and after 3 marks. Latency: ``apply_hints`` on the largest photo
resampled to 12 MP, with 1 and 3 marks.

Automatic results are cached under ``bench/results/clicks_auto/`` (keyed by the engine's
source and the weights), so reruns only pay for the marks.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from bench import speed
from bench.data import REPO_ROOT, EvalSplit, load_scorer, shared_root, spread

CACHE = REPO_ROOT / "bench" / "results" / "clicks_auto"
MAX_MARKS = 20
AUTO_GOOD = 0.95  # photos at or above this automatic IoU need no marks and are left out
MATTING_MARKS = 3
QUICK_SOD, QUICK_MATTING = 8, 3
LATENCY_MARKS = 8
TARGET_MP = 12
LARGEST_PHOTO = "dis5k_1-Accessories-1-Bag-2339506821_83cf9f1d22_o"

# The engine's modules that the automatic result depends on.
PIPELINE_MODULES = (
    *("pipeline", "preprocess", "container", "sniff", "pixels"),
    *("segment", "model", "refine", "matting"),
    *("weights_catalogue", "weights_check", "weights_download", "weights_loader"),
)

Refine = Callable[[np.ndarray, np.ndarray, np.ndarray, np.ndarray], np.ndarray]
"""(photo, foreground, automatic alpha, hints) → new alpha (H×W uint8)."""


def smart(photo: np.ndarray, fg: np.ndarray, alpha: np.ndarray, hints: np.ndarray) -> np.ndarray:
    from bgremover.engine.hints import apply_hints

    return apply_hints(photo, fg, alpha, hints).alpha


def plain_brush(
    photo: np.ndarray, fg: np.ndarray, alpha: np.ndarray, hints: np.ndarray
) -> np.ndarray:
    """The marks painted into the automatic alpha as they are, no spreading."""
    from bgremover.engine.hints import KEEP, REMOVE

    painted = alpha.copy()
    painted[hints == KEEP] = 255
    painted[hints == REMOVE] = 0
    return painted


METHODS: dict[str, Refine] = {"smart marks": smart, "plain brush": plain_brush}
BOUND = "perfect spread (bound)"


def perfect_spread(truth: np.ndarray) -> Refine:
    """What the protocol allows at best for a spread that follows each mark to the edge of the
    mistake it lies in: every error region of the automatic result under a mark takes the
    ground truth, and the marks are painted as they are (hard, like the engine's)."""
    from bgremover.engine.hints import KEEP, REMOVE

    def refine(
        photo: np.ndarray, fg: np.ndarray, alpha: np.ndarray, hints: np.ndarray
    ) -> np.ndarray:
        error = ((alpha >= 128) != truth).view(np.uint8)
        count, labels = cv2.connectedComponents(error, connectivity=8)
        hit = np.zeros(count, bool)
        hit[labels[(hints == KEEP) | (hints == REMOVE)]] = True
        hit[0] = False
        fixed = np.where(hit[labels], np.where(truth, 255, 0).astype(np.uint8), alpha)
        return plain_brush(photo, fg, fixed, hints)

    return refine


def methods_for(truth: np.ndarray) -> dict[str, Refine]:
    return {**METHODS, BOUND: perfect_spread(truth)}


def _cache_key(weights: Path) -> str:
    """Changes whenever the engine's code (other than the marks) or the weights change."""
    digest = hashlib.sha256(f"{weights.resolve()}:{weights.stat().st_size}".encode())
    for module in PIPELINE_MODULES:
        digest.update((REPO_ROOT / "bgremover" / "engine" / f"{module}.py").read_bytes())
    return digest.hexdigest()[:12]


def automatic(image: Path, kind: str, weights: Path) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(photo, foreground, alpha) of the pipeline's default run on ``image``, cached."""
    from bench.ours import engine_options
    from bgremover.engine.pipeline import remove_background
    from bgremover.engine.preprocess import decode_image

    cached = CACHE / _cache_key(weights) / kind / f"{image.stem}.png"
    photo = decode_image(str(image)).rgb
    if cached.is_file():
        rgba = np.asarray(Image.open(cached))
        return photo, rgba[..., :3].copy(), rgba[..., 3].copy()
    cutout = remove_background(str(image), engine_options(weights))
    cached.parent.mkdir(parents=True, exist_ok=True)
    rgba = np.dstack((cutout.foreground, cutout.alpha))
    Image.fromarray(rgba, "RGBA").save(cached, compress_level=1)
    return photo, cutout.foreground, cutout.alpha


def iou(alpha: np.ndarray, truth: np.ndarray) -> float:
    """score.py's IoU: both at ≥ 0.5 (``truth`` boolean)."""
    pred = alpha >= 128
    union = np.logical_or(pred, truth).sum()
    return float(np.logical_and(pred, truth).sum() / union) if union else 1.0


def mark_radius(shape: tuple[int, ...]) -> int:
    return max(5, round(0.015 * float(np.hypot(shape[0], shape[1]))))


def next_mark(alpha: np.ndarray, truth: np.ndarray) -> tuple[int, int, bool] | None:
    """(row, column, keep?) at the centre of the largest error region; None: no error."""
    error = ((alpha >= 128) != truth).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(error, connectivity=8)
    if count <= 1:
        return None
    largest = 1 + int(np.argmax(stats[1:, cv2.CC_STAT_AREA]))
    region = np.pad(labels == largest, 1).astype(np.uint8)  # the image border is a border
    distance = cv2.distanceTransform(region, cv2.DIST_L2, 5)[1:-1, 1:-1]
    row, col = np.unravel_index(int(np.argmax(distance)), distance.shape)
    return int(row), int(col), bool(truth[row, col])


def simulate(
    photo: np.ndarray,
    fg: np.ndarray,
    alpha: np.ndarray,
    truth: np.ndarray,
    refine: Refine,
    marks: int,
    stop_at: float | None = AUTO_GOOD,
    timings: list[tuple[int, float]] | None = None,
) -> tuple[list[float], list[np.ndarray]]:
    """IoU after 0, 1, … marks (until ``stop_at`` is reached or ``marks`` are placed) and the
    alphas; ``timings`` collects (marks, seconds) of each call."""
    from bgremover.engine.hints import KEEP, NO_HINT, REMOVE

    hints = np.full(alpha.shape, NO_HINT, np.uint8)
    radius = mark_radius(alpha.shape)
    current = alpha
    scores, alphas = [iou(alpha, truth)], [alpha]
    for count in range(1, marks + 1):
        if stop_at is not None and scores[-1] >= stop_at:
            break
        mark = next_mark(current, truth)
        if mark is None:
            break
        row, col, keep = mark
        cv2.circle(hints, (col, row), radius, KEEP if keep else REMOVE, thickness=-1)
        started = time.perf_counter()
        current = refine(photo, fg, alpha, hints)
        if timings is not None:
            timings.append((count, time.perf_counter() - started))
        scores.append(iou(current, truth))
        alphas.append(current)
    return scores, alphas


def clicks_to(scores: list[float], level: float) -> int:
    return next((i for i, s in enumerate(scores) if s >= level), MAX_MARKS)


def run_sod(split: EvalSplit, weights: Path, scorer, log: Callable[[str], None]) -> dict:
    rows: dict[str, dict] = {
        name: {"noc90": [], "noc95": [], "worse": []} for name in [*METHODS, BOUND]
    }
    photos = []
    for image in split.sod_images:
        photo, fg, alpha = automatic(image, "sod", weights)
        truth = scorer.load_gray(split.sod_masks / f"{image.stem}.png")[0] >= 0.5
        if iou(alpha, truth) >= AUTO_GOOD:
            continue
        photos.append(image.stem)
        for name, refine in methods_for(truth).items():
            scores, _ = simulate(photo, fg, alpha, truth, refine, MAX_MARKS)
            rows[name]["noc90"].append(clicks_to(scores, 0.90))
            rows[name]["noc95"].append(clicks_to(scores, 0.95))
            worse = any(b < a - 1e-9 for a, b in zip(scores, scores[1:], strict=False))
            rows[name]["worse"].append(image.stem if worse else None)
            log(f"clicks: {image.stem} {name}: " + " ".join(f"{s:.3f}" for s in scores))
    return {
        "photos": len(photos),
        "of": len(split.sod_images),
        "methods": {
            name: {
                "NoC@90": statistics.fmean(row["noc90"]) if photos else None,
                "NoC@95": statistics.fmean(row["noc95"]) if photos else None,
                "worse_after_a_mark": sum(1 for stem in row["worse"] if stem),
                "worse_photos": [stem for stem in row["worse"] if stem],
                "per_photo": {
                    stem: [noc90, noc95]
                    for stem, noc90, noc95 in zip(photos, row["noc90"], row["noc95"], strict=True)
                },
            }
            for name, row in rows.items()
        },
    }


def run_matting(split: EvalSplit, weights: Path, scorer, workdir: Path) -> dict:
    folders = {"automatic": workdir / "auto"} | {
        name: workdir / f"method{number}" for number, name in enumerate([*METHODS, BOUND])
    }
    for folder in folders.values():
        folder.mkdir(parents=True)
    for image in split.matting_images:
        photo, fg, alpha = automatic(image, "matting", weights)
        truth = scorer.load_gray(split.matting_alpha / f"{image.stem}.png")[0] >= 0.5
        Image.fromarray(alpha, "L").save(folders["automatic"] / f"{image.stem}.png")
        for name, refine in methods_for(truth).items():
            _, alphas = simulate(photo, fg, alpha, truth, refine, MATTING_MARKS, stop_at=None)
            Image.fromarray(alphas[-1], "L").save(folders[name] / f"{image.stem}.png")
    scores = {
        name: scorer.score_matting(folder, split.matting_alpha, split.matting_trimaps)
        for name, folder in folders.items()
    }
    return {name: {"SAD": s["SAD"], "MSE": s["MSE"]} for name, s in scores.items()}


def run_latency(shared: Path, weights: Path, workdir: Path) -> dict:
    """apply_hints on the largest photo at 12 MP: the protocol's marks one at a time, and in
    consecutive threes."""
    from bgremover.engine.hints import KEEP, NO_HINT, REMOVE

    source = shared / "eval" / "sod" / "images" / f"{LARGEST_PHOTO}.jpg"
    big = workdir / f"{TARGET_MP}mp.jpg"
    width, height = speed.upscale_to_megapixels(source, TARGET_MP, big)
    photo, fg, alpha = automatic(big, f"latency-{LARGEST_PHOTO}", weights)
    with Image.open(shared / "eval" / "sod" / "masks" / f"{LARGEST_PHOTO}.png") as mask:
        truth = np.asarray(mask.convert("L").resize((width, height), Image.Resampling.NEAREST))
    truth = truth >= 128
    # The marks the simulated user places, then each timed on its own and in threes.
    hints = np.full(alpha.shape, NO_HINT, np.uint8)
    radius = mark_radius(alpha.shape)
    marks, current = [], alpha
    for _ in range(LATENCY_MARKS):
        mark = next_mark(current, truth)
        if mark is None:
            break
        marks.append(mark)
        row, col, keep = mark
        cv2.circle(hints, (col, row), radius, KEEP if keep else REMOVE, thickness=-1)
        current = smart(photo, fg, alpha, hints)

    def timed(group: list[tuple[int, int, bool]]) -> float:
        painted = np.full(alpha.shape, NO_HINT, np.uint8)
        for row, col, keep in group:
            cv2.circle(painted, (col, row), radius, KEEP if keep else REMOVE, thickness=-1)
        started = time.perf_counter()
        smart(photo, fg, alpha, painted)
        return time.perf_counter() - started

    result = {"dimensions": f"{width}×{height}"}
    for count in (1, 3):
        runs = [timed(marks[i : i + count]) for i in range(len(marks) - count + 1)]
        result[f"{count}_mark"] = {
            "median_s": statistics.median(runs),
            "p95_s": float(np.percentile(runs, 95)),
            "runs_s": runs,
        }
    return result


def run(shared: Path, split: EvalSplit, quick: bool, log: Callable[[str], None]) -> dict:
    """Every measurement of this module; ``split`` may be a subset (--quick)."""
    weights = shared / "models" / "u2netp.pth"
    scorer = load_scorer(shared)
    started = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="bench-clicks-") as tmp:
        result = {
            "quick": quick,
            "load_average_at_start": os.getloadavg(),
            "sod": run_sod(split, weights, scorer, log),
            "matting": run_matting(split, weights, scorer, Path(tmp) / "matting"),
            "latency_12mp": run_latency(shared, weights, Path(tmp)),
        }
    result["load_average_at_end"] = os.getloadavg()
    result["wall_s"] = time.perf_counter() - started
    return result


def quick_split(full: EvalSplit, workdir: Path) -> EvalSplit:
    from bench.data import make_subset

    sod = [p.stem for p in full.sod_images]
    matting = [p.stem for p in full.matting_images]
    return make_subset(
        full, workdir / "eval", spread(sod, QUICK_SOD), spread(matting, QUICK_MATTING)
    )


def main(argv: list[str] | None = None) -> dict:
    from bench import report

    parser = argparse.ArgumentParser(prog="python -m bench.clicks", description=__doc__)
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"{QUICK_SOD} SOD and {QUICK_MATTING} matting photos; not judged against targets",
    )
    args = parser.parse_args(argv)
    shared = shared_root()

    def log(message: str) -> None:
        print(f"[bench] {message}", file=sys.stderr, flush=True)

    with tempfile.TemporaryDirectory(prefix="bench-clicks-split-") as tmp:
        full = EvalSplit(shared / "eval")
        split = quick_split(full, Path(tmp)) if args.quick else full
        result = run(shared, split, args.quick, log)
    print(report.format_clicks(result))
    print(f"load average (1/5/15 min) at the end: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return result


if __name__ == "__main__":
    main()
