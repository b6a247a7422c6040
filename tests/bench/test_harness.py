"""The benchmark harness: its scores are score.py's, its photos have the asked-for size,
its process measurements see the child's memory, and its results file has every section."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from scipy import ndimage

from bench import quality, report, speed
from bench.data import EvalSplit, load_scorer, make_subset, spread

SOD_ITEMS = ["ecssd_0557", "ecssd_0774", "dis5k_1-Accessories-1-Bag-2339506821_83cf9f1d22_o"]
MATTING_ITEMS = ["alphamatting_GT02", "alphamatting_GT04", "alphamatting_GT27"]


def degraded_truth(truth_dir: Path):
    """A plausible imperfect prediction: the ground truth blurred and shifted by a few pixels."""

    def predict(image: Path) -> np.ndarray:
        with Image.open(truth_dir / f"{image.stem}.png") as truth:
            alpha = np.asarray(truth.convert("L"), dtype=np.float32)
        soft = ndimage.shift(ndimage.gaussian_filter(alpha, 3.0), (4, -3), mode="nearest")
        return np.clip(np.round(soft), 0, 255).astype(np.uint8)

    return predict


def score_cli(shared_dir: Path, *args: str) -> dict:
    done = subprocess.run(
        [sys.executable, str(shared_dir / "tools" / "score.py"), *args, "--json"],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(done.stdout)


def test_table_numbers_are_score_py_cli_numbers(shared_dir: Path, eval_dir: Path, tmp_path: Path):
    split = make_subset(EvalSplit(eval_dir), tmp_path / "eval", SOD_ITEMS, MATTING_ITEMS)
    methods = {
        "sod": {"blurred": degraded_truth(split.sod_masks)},
        "matting": {"blurred": degraded_truth(split.matting_alpha)},
    }
    results = quality.run_quality(
        methods, split, load_scorer(shared_dir), tmp_path / "pred", log=lambda _: None
    )

    reference = {
        "sod": score_cli(
            shared_dir,
            "sod",
            "--pred",
            str(tmp_path / "pred" / "sod" / "blurred"),
            "--gt",
            str(split.sod_masks),
        ),
        "matting": score_cli(
            shared_dir,
            "matting",
            "--pred",
            str(tmp_path / "pred" / "matting" / "blurred"),
            "--gt",
            str(split.matting_alpha),
            "--trimaps",
            str(split.matting_trimaps),
        ),
    }
    for kind, columns in (("sod", report.SOD_COLUMNS), ("matting", report.MATTING_COLUMNS)):
        ours = results[kind]["blurred"]
        assert reference[kind]["items"] == 3 and reference[kind]["missing"] == 0
        for key, value in reference[kind].items():
            assert ours[key] == value, (kind, key)
        table_row = report.format_quality(kind, results[kind]).splitlines()[2].split()
        assert table_row[1 : 1 + len(columns)] == [f"{reference[kind][c]:.4f}" for c in columns]
    # The degraded prediction is imperfect, so the metrics are not at their trivial values.
    assert 0 < results["sod"]["blurred"]["MAE"] < 0.2
    assert results["matting"]["blurred"]["SAD"] > 0


@pytest.mark.parametrize("megapixels", [1.0, 2.5])
def test_upscaled_photo_has_the_requested_pixel_count_and_aspect(
    eval_dir: Path, tmp_path: Path, megapixels: float
):
    source = eval_dir / "sod" / "images" / "ecssd_0557.jpg"  # the grayscale JPEG
    dst = tmp_path / "photo.jpg"
    width, height = speed.upscale_to_megapixels(source, megapixels, dst)
    with Image.open(source) as original, Image.open(dst) as written:
        assert written.format == "JPEG" and written.mode == "RGB"
        assert written.size == (width, height)
        assert abs(width * height / (megapixels * 1e6) - 1) < 0.005
        assert abs(width / height - original.width / original.height) < 0.01


def test_process_peak_rss_is_that_childs_own():
    allocate = "import numpy; a = numpy.ones(300 * 2**20 // 8); print(a.sum())"
    big = speed.run_process([sys.executable, "-c", allocate])
    small = speed.run_process([sys.executable, "-c", "pass"])
    assert big.peak_rss_bytes > 300 * 2**20
    assert small.peak_rss_bytes < 50 * 2**20
    assert big.seconds > 0 and small.seconds > 0


def test_failing_process_reports_its_output():
    with pytest.raises(RuntimeError, match="(?s)exited with 3.*boom"):
        speed.run_process([sys.executable, "-c", "print('boom'); raise SystemExit(3)"])


def test_spread_takes_evenly_spaced_items():
    assert spread(list("abcdefghij"), 3) == ["a", "d", "g"]
    assert spread(list("abc"), 5) == ["a", "b", "c"]


def test_targets_compare_inclusively_and_mark_unmeasured_ones():
    results = {"quality": {"sod": {"ours_auto": {"MAE": 0.042, "maxF": 0.9, "S": 0.95}}}}
    verdicts = {t.name: t.passed for t in report.targets(results)}
    assert verdicts["SOD MAE"] is True
    assert verdicts["SOD max F"] is False
    assert verdicts["SOD S-measure"] is True
    assert verdicts["matting SAD"] is None
    assert verdicts["forward 320×320 (PyTorch)"] is None


def test_a_subsets_quality_is_shown_but_not_judged():
    scores = {"MAE": 0.01, "maxF": 0.99, "S": 0.99}
    results = {"meta": {"eval_subset": True}, "quality": {"sod": {"ours_auto": scores}}}
    found = {t.name: t for t in report.targets(results)}
    assert {found[name].passed for name in ("SOD MAE", "SOD max F", "SOD S-measure")} == {None}
    assert "not judged" in found["SOD MAE"].note


def test_cli_targets_compare_our_matting_run_with_both_rembg_runs():
    def row(matting: str, ours: float, theirs: float) -> dict:
        return {
            "size_mp": 12,
            "matting": matting,
            "ours": {"median_s": ours},
            "rembg": {"median_s": theirs},
            "ratio": ours / theirs,
        }

    results = {"speed": {"cli": [row("off", 4.0, 5.0), row("on", 6.0, 50.0)]}}
    found = {t.name: t for t in report.targets(results)}
    plain = found["CLI 12 MP: ours with matting / rembg plain"]
    assert plain.measured == 6.0 / 5.0 and plain.passed is False
    alpha_matting = found["CLI 12 MP: ours with matting / rembg -a"]
    assert alpha_matting.measured == 6.0 / 50.0 and alpha_matting.passed is True
    # Runs that alternated exactly ours with matting and rembg plain take precedence.
    results["speed"]["matting_vs_plain"] = [
        {"size_mp": 12, "ours": {"median_s": 4.5}, "rembg": {"median_s": 5.0}, "ratio": 0.9}
    ]
    plain = {t.name: t for t in report.targets(results)}[
        "CLI 12 MP: ours with matting / rembg plain"
    ]
    assert plain.measured == 0.9 and plain.passed is True


def test_rembg_loads_the_shared_onnx_from_its_own_home(
    shared_dir: Path, eval_dir: Path, tmp_path: Path
):
    from bench import rembg_runner

    if not rembg_runner.rembg_available():
        pytest.skip("rembg is installed only in the benchmark's venv (make bench)")
    onnx = shared_dir / "models" / "u2netp.onnx"
    copy = rembg_runner.prepare_home(onnx, tmp_path / "home")
    assert copy.read_bytes() == onnx.read_bytes()
    cutter = rembg_runner.RembgCutter(copy)
    image = eval_dir / "sod" / "images" / "ecssd_0774.jpg"
    alpha = cutter.alpha(image, alpha_matting=False)
    with Image.open(image) as original, Image.open(eval_dir / "sod/masks/ecssd_0774.png") as gt:
        assert alpha.shape == (original.height, original.width)
        truth = np.asarray(gt) >= 128
    assert np.abs((alpha >= 128).astype(float) - truth).mean() < 0.2


def run_bench(tmp_path: Path, *args: str) -> dict:
    pytest.importorskip("bgremover.engine.pipeline", reason="the engine pipeline is not in yet")
    from bench import run

    out = tmp_path / "results.json"
    run.main(["--no-rembg", "--json", str(out), *args])
    return json.loads(out.read_text())


def test_results_json_has_the_quality_section_and_every_target(shared_dir: Path, tmp_path: Path):
    results = run_bench(tmp_path, "--only", "quality", "--sod-limit", "2", "--matting-limit", "1")

    assert {"meta", "quality", "targets"} <= set(results)
    assert "speed" not in results and "forward" not in results
    assert {"date", "command", "machine", "versions"} <= set(results["meta"])
    for kind, columns in (("sod", report.SOD_COLUMNS), ("matting", report.MATTING_COLUMNS)):
        assert set(results["quality"][kind]) == {"ours_auto", "ours_off"}
        for scores in results["quality"][kind].values():
            assert set(columns) | {"items", "missing", "seconds"} <= set(scores)
            assert scores["items"] == (2 if kind == "sod" else 1) and scores["missing"] == 0
    verdicts = {target["name"]: target for target in results["targets"]}
    # Two photos are not the development split: measured, shown, but not judged.
    assert results["meta"]["eval_subset"] is True
    assert verdicts["SOD MAE"]["passed"] is None and "not judged" in verdicts["SOD MAE"]["note"]
    assert verdicts["forward 320×320 (PyTorch)"]["passed"] is None  # not measured in this run


@pytest.mark.slow
def test_results_json_has_the_speed_and_forward_sections(shared_dir: Path, tmp_path: Path):
    results = run_bench(
        tmp_path, "--only", "speed", "--sizes", "0.05", "--repeats", "1", "--forward-repeats", "1"
    )

    assert {"meta", "speed", "forward", "targets"} <= set(results)
    assert [(row["size_mp"], row["matting"]) for row in results["speed"]["cli"]] == [
        (0.05, "off"),
        (0.05, "on"),
    ]
    for row in results["speed"]["cli"]:
        assert row["ours"]["median_s"] > 0 and row["ours"]["peak_rss_mib"] > 0
        assert "rembg" not in row
    assert len(results["speed"]["in_process"]) == 2
    assert results["forward"]["gflop_counted"] == pytest.approx(39.51, abs=0.01)
    assert results["forward"]["ours_torch"]["median_s"] > 0
    assert results["forward"]["ours_torch_flip_batch"]["batch_size"] == 2


def test_quick_defaults_yield_to_explicit_options():
    from bench.run import parse_args

    quick = parse_args(["--quick", "--no-rembg"])
    assert (quick.sizes, quick.repeats, quick.sod_limit) == ([1.0], 1, 8)
    mixed = parse_args(["--quick", "--no-rembg", "--sizes", "0.1,2", "--repeats", "2"])
    assert (mixed.sizes, mixed.repeats) == ([0.1, 2.0], 2)
    full = parse_args(["--no-rembg"])
    assert (full.sizes, full.repeats, full.sod_limit) == ([1.0, 12.0, 24.0], 3, None)
    with pytest.raises(SystemExit):
        parse_args(["--no-rembg", "--sizes", "12,big"])
