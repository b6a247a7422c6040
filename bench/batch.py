"""Throughput at volume: ``manage.py removebg`` on a folder of photos with its default --jobs,
beside rembg's folder mode (``rembg p``) on the same photos and the same u2netp weights.

Each side is one whole process run over the folder, start-up and model loading included, as a
user would time it; images per minute = photos / wall seconds × 60. One run of each, back to
back: the load average in the report's header says how busy the machine was."""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Callable
from pathlib import Path

from bench import speed
from bench.data import REPO_ROOT, spread
from editor.management.batch_workers import available_cores, default_jobs

PHOTOS, QUICK_PHOTOS = 40, 8
MEGAPIXELS = 1.0


def prepare_photos(shared: Path, count: int, folder: Path) -> list[Path]:
    """``count`` SOD photos spread through the set, each resampled to MEGAPIXELS."""
    stems = spread(sorted(p.stem for p in (shared / "eval/sod/images").glob("*.jpg")), count)
    folder.mkdir(parents=True, exist_ok=True)
    photos = []
    for stem in stems:
        photo = folder / f"{stem}.jpg"
        speed.upscale_to_megapixels(shared / "eval/sod/images" / f"{stem}.jpg", MEGAPIXELS, photo)
        photos.append(photo)
    return photos


# Ours as rembg p works: one network pass a photo (no mirrored second pass) and no matting;
# our cut-out still takes its second look and guided edges.
LIKE_REMBG = ("--matting", "off", "--no-tta")


def ours_command(
    folder: Path, out_dir: Path, weights: Path, extra: tuple[str, ...] = ()
) -> list[str]:
    """``manage.py removebg`` on the folder with the command's defaults (jobs, matting auto)
    and ``extra`` options."""
    return [
        sys.executable,
        str(REPO_ROOT / "manage.py"),
        "removebg",
        str(folder),
        "-o",
        str(out_dir),
        "--model-path",
        str(weights),
        *extra,
    ]


def rembg_command(rembg_exe: str, folder: Path, out_dir: Path, onnx: Path) -> list[str]:
    """``rembg p`` (folder mode) with the custom session on our weights' ONNX export."""
    extras = json.dumps({"model_path": str(onnx)})
    return [rembg_exe, "p", "-m", "u2net_custom", "-x", extras, str(folder), str(out_dir)]


def _throughput(run: speed.ProcessRun, photos: int) -> dict:
    return {
        "seconds": run.seconds,
        "images_per_min": photos / run.seconds * 60,
        "peak_rss_mib": run.peak_rss_bytes / 2**20,
    }


def _timed(command: list[str], env: dict[str, str], out_dir: Path, photos: int) -> dict:
    shutil.rmtree(out_dir, ignore_errors=True)
    run = speed.run_process(command, env=env)
    written = len(list(out_dir.glob("*.png")))
    if written != photos:
        raise RuntimeError(f"{command[0]} wrote {written} results for {photos} photos")
    return _throughput(run, photos)


def run(
    shared: Path,
    workdir: Path,
    quick: bool,
    rembg_cli: str | None,
    onnx: Path | None,
    rembg_env: dict[str, str],
    log: Callable[[str], None],
) -> dict:
    """Both sides once over the folder (after an untimed one-photo run of each)."""
    count = QUICK_PHOTOS if quick else PHOTOS
    weights = shared / "models" / "u2netp.pth"
    folder, warm = workdir / "photos", workdir / "warm"
    photos = prepare_photos(shared, count, folder)
    warm.mkdir()
    shutil.copy(photos[0], warm / photos[0].name)
    # The command needs no secret: measured as a user runs it, without one.
    ours_env = {
        k: v for k, v in os.environ.items() if k not in ("SECRET_KEY", "ALLOW_DEV_SECRET_KEY")
    }
    log(f"batch: {count} photos at {MEGAPIXELS:g} MP, warm-up runs")
    # Untimed: a fresh install's first run compiles .pyc files and fills numba's cache.
    speed.run_process(ours_command(warm, workdir / "warm_out", weights), env=ours_env)
    if onnx is not None and rembg_cli:
        speed.run_process(rembg_command(rembg_cli, warm, workdir / "warm_out", onnx), env=rembg_env)
    log(f"batch: ours, --jobs default ({default_jobs()})")
    result = {
        "photos": count,
        "megapixels": MEGAPIXELS,
        "cores": available_cores(),
        "jobs": default_jobs(),
        "quick": quick,
        "ours": _timed(
            ours_command(folder, workdir / "out", weights), ours_env, workdir / "out", count
        ),
    }
    if onnx is not None and rembg_cli:
        log("batch: rembg p")
        result["rembg"] = _timed(
            rembg_command(rembg_cli, folder, workdir / "rembg_out", onnx),
            rembg_env,
            workdir / "rembg_out",
            count,
        )
        result["ratio"] = result["ours"]["images_per_min"] / result["rembg"]["images_per_min"]
    log("batch: ours like rembg p (matting off, no mirrored pass)")
    plain = workdir / "plain_out"
    result["ours_plain"] = _timed(
        ours_command(folder, plain, weights, LIKE_REMBG), ours_env, plain, count
    )
    if "rembg" in result:
        result["plain_ratio"] = (
            result["ours_plain"]["images_per_min"] / result["rembg"]["images_per_min"]
        )
    return result
