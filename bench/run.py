"""``python -m bench.run``: quality and speed, ours vs rembg 2.0.86 on the same u2netp weights.

    python -m bench.run [--quick] [--only quality|speed|clicks|batch|api] [--repeats N]
                        [--json PATH]

Prints the tables and writes every number to ``bench/results/latest.json``. The shared
data comes from ``$BGREMOVER_SHARED`` (default ``../shared``). ``make bench`` runs it in
``.venv-bench`` with rembg's CLI from ``.venv-rembg``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path

from bench import api, batch, clicks, forward, ours, quality, rembg_runner, report, speed
from bench.data import REPO_ROOT, EvalSplit, load_scorer, make_subset, shared_root, spread

DEFAULT_JSON = REPO_ROOT / "bench" / "results" / "latest.json"
REMBG_HOME = REPO_ROOT / "bench" / "results" / "rembg_home"
TARGET_MP = 12  # the size of the whole-process targets
DEFAULT_PHOTO = "dis5k_1-Accessories-1-Bag-2339506821_83cf9f1d22_o"  # 5 MP, the largest photo
QUICK_SOD, QUICK_MATTING = 8, 3


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m bench.run",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--quick",
        action="store_true",
        help=f"smoke run: {QUICK_SOD} SOD and {QUICK_MATTING} matting items, "
        "1 MP only, one repeat, 5 forward passes",
    )
    parser.add_argument(
        "--only",
        choices=["quality", "speed", "clicks", "batch", "api"],
        help="run one part (speed includes the forward timing; clicks: smart marks, bench.clicks; "
        "batch: removebg on a folder beside rembg p, bench.batch; api: the HTTP API beside the "
        "browser's way, bench.api)",
    )
    parser.add_argument(
        "--repeats",
        type=int,
        help="runs per speed measurement of ours and plain rembg, median quoted "
        "(default 3; --quick: 1)",
    )
    parser.add_argument(
        "--rembg-matting-repeats",
        type=int,
        default=1,
        help="runs of rembg -a per size (about 50 s and 7 GB each at 12-24 MP)",
    )
    parser.add_argument("--no-rembg", action="store_true", help="leave rembg out entirely")
    parser.add_argument(
        "--no-rembg-matting-speed",
        action="store_true",
        help="skip the slow rembg -a process runs (its quality is still scored)",
    )
    parser.add_argument(
        "--sizes",
        help="megapixel sizes for the speed runs, comma-separated (default 1,12,24; --quick: 1)",
    )
    parser.add_argument(
        "--photo",
        default=DEFAULT_PHOTO,
        help="stem of the eval/sod image resampled for the speed runs",
    )
    parser.add_argument("--sod-limit", type=int, help="score only N SOD items (spread evenly)")
    parser.add_argument("--matting-limit", type=int, help="score only N matting items")
    parser.add_argument(
        "--forward-repeats",
        type=int,
        help="timed 320×320 forward passes after 3 warm-up passes (default 20; --quick: 5)",
    )
    parser.add_argument(
        "--rembg-cli",
        default=shutil.which("rembg"),
        help="rembg executable with the CLI extra (make bench: .venv-rembg)",
    )
    parser.add_argument("--json", type=Path, default=DEFAULT_JSON, help="where to write results")
    args = parser.parse_args(argv)
    # Options given on the command line win over --quick's smaller defaults.
    defaults = (
        {
            "sod_limit": QUICK_SOD,
            "matting_limit": QUICK_MATTING,
            "sizes": "1",
            "repeats": 1,
            "forward_repeats": 5,
        }
        if args.quick
        else {"sizes": "1,12,24", "repeats": 3, "forward_repeats": 20}
    )
    for name, value in defaults.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    try:
        args.sizes = [float(s) for s in args.sizes.split(",") if s.strip()]
    except ValueError:
        parser.error(f"--sizes must be numbers separated by commas, got {args.sizes!r}")
    if args.repeats < 1 or args.rembg_matting_repeats < 0 or args.forward_repeats < 1:
        parser.error("--repeats and --forward-repeats must be ≥ 1, --rembg-matting-repeats ≥ 0")
    if not args.no_rembg and not rembg_runner.rembg_available():
        parser.error(
            "rembg is not importable in this Python: run in .venv-bench "
            "(make bench) or pass --no-rembg"
        )
    return args


def log(message: str) -> None:
    print(f"[bench] {message}", file=sys.stderr, flush=True)


def eval_split(shared: Path, args: argparse.Namespace, workdir: Path) -> EvalSplit:
    full = EvalSplit(shared / "eval")
    if args.sod_limit is None and args.matting_limit is None:
        return full
    sod = [p.stem for p in full.sod_images]
    matting = [p.stem for p in full.matting_images]
    return make_subset(
        full,
        workdir / "eval",
        spread(sod, args.sod_limit or len(sod)),
        spread(matting, args.matting_limit or len(matting)),
    )


def run_quality(
    args: argparse.Namespace, shared: Path, workdir: Path, cutter: rembg_runner.RembgCutter | None
) -> dict:
    weights = shared / "models" / "u2netp.pth"
    split = eval_split(shared, args, workdir)
    ours_methods = {
        "ours_auto": ours.predictor(weights, "auto"),
        "ours_off": ours.predictor(weights, "off"),
    }
    methods = {"sod": dict(ours_methods), "matting": dict(ours_methods)}
    if cutter is not None:
        methods["sod"]["rembg"] = lambda p: cutter.alpha(p, alpha_matting=False)
        methods["matting"]["rembg"] = lambda p: cutter.alpha(p, alpha_matting=False)
        methods["matting"]["rembg_alpha_matting"] = lambda p: cutter.alpha(p, alpha_matting=True)
    return quality.run_quality(methods, split, load_scorer(shared), workdir / "predictions", log)


def run_speed(args: argparse.Namespace, shared: Path, workdir: Path, onnx: Path | None) -> dict:
    weights = shared / "models" / "u2netp.pth"
    source = shared / "eval" / "sod" / "images" / f"{args.photo}.jpg"
    if not source.is_file():
        raise SystemExit(f"--photo {args.photo!r}: no such image {source}")
    out_dir = workdir / "out"
    out_dir.mkdir(parents=True, exist_ok=True)
    # manage.py refuses the development secret key unless told it is a private machine.
    ours_env = {**os.environ, "ALLOW_DEV_SECRET_KEY": "1"}
    photos = {size: workdir / "photos" / f"{size:g}mp.jpg" for size in args.sizes}
    dimensions = {
        size: speed.upscale_to_megapixels(source, size, photo) for size, photo in photos.items()
    }
    # One untimed run of each CLI first: a fresh install's first run compiles .pyc files and
    # fills numba's cache, which no later run pays.
    smallest = photos[min(photos)]
    log("speed: warm-up runs")
    speed.run_process(
        ours.cli_command(sys.executable, smallest, out_dir, weights, "on"), env=ours_env
    )
    if onnx is not None:
        speed.run_process(
            rembg_runner.cli_command(
                args.rembg_cli,
                smallest,
                out_dir / "rembg.png",
                onnx,
                alpha_matting=not args.no_rembg_matting_speed,
            ),
            env=rembg_runner.rembg_env(REMBG_HOME),
        )
    # The in-process runs share one warm process: load the model and compile numba once.
    ours.end_to_end(weights, "on", smallest, out_dir / "in_process.png")()
    cli_rows, in_process_rows, matting_vs_plain = [], [], []
    for size, photo in photos.items():
        width, height = dimensions[size]
        for matting in ("off", "on"):
            log(f"speed: {size:g} MP ({width}×{height}), matting {matting}, processes")
            with_matting = matting == "on"
            their_repeats = args.rembg_matting_repeats if with_matting else args.repeats
            if onnx is None or (with_matting and args.no_rembg_matting_speed):
                their_repeats = 0
            row = speed.compare_processes(
                ours.cli_command(sys.executable, photo, out_dir, weights, matting),
                rembg_runner.cli_command(
                    args.rembg_cli, photo, out_dir / "rembg.png", onnx, alpha_matting=with_matting
                )
                if their_repeats
                else None,
                args.repeats,
                their_repeats,
                ours_env=ours_env,
                theirs_env=rembg_runner.rembg_env(REMBG_HOME),
            )
            cli_rows.append(
                {"size_mp": size, "dimensions": f"{width}×{height}", "matting": matting, **row}
            )
            if with_matting and size == TARGET_MP and onnx is not None:
                # The target pairs our run with matting and rembg's without: measured
                # side by side too, alternating, not taken from two phases of the run.
                log(f"speed: {size:g} MP, ours with matting beside rembg plain, processes")
                pair = speed.compare_processes(
                    ours.cli_command(sys.executable, photo, out_dir, weights, "on"),
                    rembg_runner.cli_command(
                        args.rembg_cli, photo, out_dir / "rembg.png", onnx, alpha_matting=False
                    ),
                    args.repeats,
                    args.repeats,
                    ours_env=ours_env,
                    theirs_env=rembg_runner.rembg_env(REMBG_HOME),
                )
                matting_vs_plain.append({"size_mp": size, **pair})
            log(f"speed: {size:g} MP, matting {matting}, in-process")
            run = ours.end_to_end(weights, matting, photo, out_dir / "in_process.png")
            in_process_rows.append(
                {
                    "size_mp": size,
                    "matting": matting,
                    **speed.time_calls(run, args.repeats, warmup=0),
                }
            )
    return {
        "photo": args.photo,
        "cli": cli_rows,
        "matting_vs_plain": matting_vs_plain,
        "in_process": in_process_rows,
    }


def run_forward(
    args: argparse.Namespace, shared: Path, cutter: rembg_runner.RembgCutter | None
) -> dict:
    model, torch_pass = ours.network_forward(shared / "models" / "u2netp.pth")
    macs = forward.count_conv_macs(model)
    gflop = 2 * macs / 1e9
    result = {
        "gmac_counted": macs / 1e9,
        "gflop_counted": gflop,
        "gflop_quoted": 39.5,
        "ours_torch": forward.time_forward(torch_pass, gflop, args.forward_repeats),
        # the pipeline's flip test-time augmentation: photo and mirror in one batch
        "ours_torch_flip_batch": forward.time_forward(
            torch_pass, gflop, args.forward_repeats, batch_size=2
        ),
    }
    if cutter is not None:
        result["rembg_onnxruntime"] = forward.time_forward(
            cutter.forward, gflop, args.forward_repeats
        )
    return result


def versions() -> dict:
    import numpy
    import PIL
    import torch

    found = {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "numpy": numpy.__version__,
        "pillow": PIL.__version__,
    }
    if torch.cuda.is_available():  # the engine's default device: these are not CPU figures
        found["gpu"] = torch.cuda.get_device_name()
    for name in ("onnxruntime", "rembg", "pymatting", "numba"):
        try:
            found[name] = __import__(name).__version__
        except ImportError:
            continue
    return found


def main(argv: list[str] | None = None) -> dict:
    started = time.perf_counter()
    args = parse_args(argv)
    shared = shared_root()
    results: dict = {
        "meta": {
            "date": datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds"),
            "command": " ".join(["python -m bench.run", *(sys.argv[1:] if argv is None else argv)]),
            "machine": f"{platform.machine()} {os.cpu_count()} CPUs, {platform.platform()}",
            "load_average_at_start": os.getloadavg(),
            "shared": str(shared),
            "quick": args.quick,
            # Quality on fewer photos than the whole development split is shown, not judged.
            "eval_subset": args.sod_limit is not None or args.matting_limit is not None,
            "repeats": args.repeats,
            "rembg_matting_repeats": args.rembg_matting_repeats,
            "versions": versions(),
        }
    }
    onnx = (
        None
        if args.no_rembg
        else rembg_runner.prepare_home(shared / "models" / "u2netp.onnx", REMBG_HOME)
    )
    cutter = None if onnx is None else rembg_runner.RembgCutter(onnx)
    with tempfile.TemporaryDirectory(prefix="bench-") as tmp:
        workdir = Path(tmp)
        if args.only in (None, "quality"):
            results["quality"] = run_quality(args, shared, workdir, cutter)
        if args.only in (None, "speed"):
            if onnx is not None and not args.rembg_cli:
                raise SystemExit(
                    "rembg's CLI not found: pass --rembg-cli (make bench uses "
                    ".venv-rembg/bin/rembg) or --no-rembg"
                )
            results["speed"] = run_speed(args, shared, workdir, onnx)
            results["forward"] = run_forward(args, shared, cutter)
        if args.only in (None, "clicks"):
            log("clicks: smart marks by a simulated user")
            split = eval_split(shared, args, workdir / "clicks")
            results["clicks"] = clicks.run(shared, split, args.quick, log)
        if args.only in (None, "batch"):
            results["batch"] = batch.run(
                shared,
                workdir / "batch",
                args.quick,
                args.rembg_cli,
                onnx,
                rembg_runner.rembg_env(REMBG_HOME),
                log,
            )
        if args.only in (None, "api"):
            results["api"] = {
                **api.run(shared, workdir / "api", args.quick, log),
                "quick": args.quick,
            }
    # Other work on the machine skews the timings: the load averages say how much there was.
    results["meta"]["load_average_at_end"] = os.getloadavg()
    results["meta"]["wall_s"] = time.perf_counter() - started
    results["targets"] = [t.as_dict() for t in report.targets(results)]
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n")
    text = report.format_report(results)
    args.json.with_suffix(".txt").write_text(text + "\n")
    print(text)
    print(f"\nresults written to {args.json} (tables: {args.json.with_suffix('.txt')})")
    return results


if __name__ == "__main__":
    main()
