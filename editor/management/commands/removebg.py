"""``manage.py removebg``: remove the background of image files from the command line.

Runs the same engine as the web app, without the database: nothing is stored, the results
go straight to the output folder. One bad file does not stop the batch; the exit status is
non-zero when any file failed.
"""

from __future__ import annotations

import dataclasses
import functools
import math
import os
import time
from argparse import ArgumentParser, RawDescriptionHelpFormatter
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from django.conf import settings
from django.core.management.base import (
    BaseCommand,
    CommandError,
    DjangoHelpFormatter,
    OutputWrapper,
)

from bgremover.engine.compose import Background, parse_background
from bgremover.engine.encode import FORMATS
from bgremover.engine.errors import EngineError, OptionsError, WeightsError
from bgremover.engine.hints import apply_hints
from bgremover.engine.matting import MattingProcess, Solver, solve_working_size
from bgremover.engine.pipeline import (
    Cutout,
    RemovalOptions,
    RenderOptions,
    remove_background,
    render,
)
from editor.management.download_progress import ProgressBar

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)
DEFAULT_CROP_PERCENT = "5"

HELP = """\
Remove the background of images and write the results to OUTDIR as <input name>.<ext>.

A folder as INPUT means every image directly inside it (by extension: jpg jpeg png webp gif
bmp tif tiff heic heif). Files that fail are reported by name and the others still get done;
the exit status is 1 when any file failed.

The command uses no database, but Django settings still need a secret: set SECRET_KEY, or
DEBUG=1 or ALLOW_DEV_SECRET_KEY=1 on your own machine, e.g.
    ALLOW_DEV_SECRET_KEY=1 python manage.py removebg photos/ -o cutouts/ --background '#ffffff'
"""


@dataclass(frozen=True)
class Job:
    """One entry of the batch: an image file to process, or an input that is already known
    to be bad (``problem`` says why)."""

    path: Path
    problem: str | None = None
    hints: Path | None = None  # a hint map (--hints) for this image


class HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    """Django's option order, and the description's line breaks and example kept."""


class ProgressLine:
    """A single self-overwriting line on a terminal: file n/N, stage, percent done."""

    WIDTH = 20

    def __init__(self, stream: OutputWrapper, total: int) -> None:
        self.stream = stream
        self.total = total
        self.index = 0
        self.name = ""
        self.shown = ""

    def start(self, index: int, name: str) -> None:
        self.index, self.name = index, name
        self.update("starting", 0.0)

    def update(self, stage: str, fraction: float) -> None:
        fraction = min(1.0, max(0.0, fraction))
        filled = round(fraction * self.WIDTH)
        name = self.name if len(self.name) <= 40 else "…" + self.name[-39:]
        text = (
            f"[{self.index}/{self.total}] {name} "
            f"[{'#' * filled}{'-' * (self.WIDTH - filled)}] {stage:<10} {fraction:4.0%}"
        )
        if text != self.shown:
            # style_func=str: Django would otherwise paint everything on stderr as an error
            self.stream.write(f"\r\033[K{text}", style_func=str, ending="")
            self.stream.flush()
            self.shown = text

    def part(self, start: float, share: float) -> Callable[[str, float], None]:
        """A progress callback mapping one step's 0..1 onto start..start+share of the file."""
        return lambda stage, fraction: self.update(stage, start + share * fraction)

    def clear(self) -> None:
        if self.shown:
            self.stream.write("\r\033[K", style_func=str, ending="")
            self.stream.flush()
            self.shown = ""


class Command(BaseCommand):
    help = HELP
    requires_system_checks: list[str] = []  # no database, no models: works on a bare checkout

    def create_parser(self, prog_name: str, subcommand: str, **kwargs: Any) -> ArgumentParser:
        kwargs.setdefault("formatter_class", HelpFormatter)
        return super().create_parser(prog_name, subcommand, **kwargs)

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("inputs", nargs="+", metavar="INPUT", help="image files or folders")
        parser.add_argument(
            "-o",
            "--out-dir",
            required=True,
            metavar="OUTDIR",
            help="folder for the results (created if missing)",
        )
        parser.add_argument(
            "--model",
            metavar="NAME",
            help="u2net, u2netp or u2net_human_seg (default: BGREMOVER_MODEL or the best present)",
        )
        parser.add_argument("--model-path", metavar="PATH", help="use this weights file")
        parser.add_argument(
            "--matting",
            choices=("auto", "on", "off"),
            default="auto",
            help="alpha matting for soft edges such as hair (default: auto)",
        )
        parser.add_argument(
            "--no-tta",
            action="store_true",
            help="one forward pass instead of two (the photo and its mirror image): "
            "about a third faster, slightly rougher masks",
        )
        parser.add_argument(
            "--output",
            choices=("cutout", "mask"),
            default="cutout",
            help="cutout: the subject (default); mask: the alpha as 8-bit greyscale PNG",
        )
        parser.add_argument(
            "--format",
            choices=sorted(FORMATS),
            default=None,
            help="file format of cut-outs (default: png; masks are always png)",
        )
        parser.add_argument(
            "--background",
            metavar="BG",
            default=None,
            help="transparent (default), #RRGGBB, blur, blur:NN (1-100) or an image file",
        )
        parser.add_argument(
            "--crop",
            nargs="?",
            const=DEFAULT_CROP_PERCENT,
            default=None,
            metavar="MARGIN",
            help=f"crop to the subject plus a margin in percent of its size "
            f"(--crop alone: {DEFAULT_CROP_PERCENT} %%; --crop 10 or --crop 10%%)",
        )
        parser.add_argument(
            "--hints",
            metavar="PATH",
            help="keep/remove marks the cut-out follows: an 8-bit grey PNG the size of the "
            "photo (255 keep, 0 remove, anything else no mark) for a single input, or a "
            "folder holding <input name>.png for each input (inputs without one run as usual)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        inputs: list[str] = list(options["inputs"])
        crop_margin, crop_input = _parse_crop(options["crop"])
        if crop_input is not None:
            inputs.insert(0, crop_input)
        output = options["output"]
        fmt = _check_format(output, options["format"], options["background"])
        background = _parse_background_option(options["background"])
        if output == "cutout" and fmt == "jpeg" and background.kind == "transparent":
            raise CommandError(
                "JPEG cannot store transparency: add --background (e.g. --background '#ffffff' "
                "or --background blur), or choose --format png or webp"
            )
        removal = RemovalOptions(
            model=options["model"] or settings.DEFAULT_MODEL,
            model_path=options["model_path"],
            model_dir=settings.MODEL_DIR,
            matting=options["matting"],
            flip=not options["no_tta"],
        )
        out_dir = _make_out_dir(options["out_dir"])
        # Started before torch is imported (by _load_model), so that pymatting's start-up
        # runs on the other core meanwhile (see MattingProcess).
        helper = MattingProcess() if removal.matting != "off" else None
        try:
            self._load_model(removal, options["verbosity"])
            rendering = RenderOptions(
                background=background, crop_margin=crop_margin, output=output, format=fmt
            )
            extension = ".png" if output == "mask" else FORMATS[fmt][1]
            self._run_batch(
                _attach_hints(_expand_inputs(inputs), options["hints"]),
                out_dir,
                extension,
                removal,
                rendering,
                verbosity=options["verbosity"],
                matting_solver=helper or solve_working_size,
            )
        finally:
            if helper:
                helper.close()

    def _load_model(self, removal: RemovalOptions, verbosity: int) -> None:
        """Load the network (downloading its weights if need be, with a bar on a terminal)
        before any file: a weights problem stops the command at once instead of failing every
        file. The engine keeps the model, so remove_background finds it loaded."""
        # Imported here, not at the top: it brings torch, which MattingProcess should not wait
        # for (and --help should not either).
        from bgremover.engine.weights import load_model

        show = verbosity > 0 and self.stderr.isatty()
        bar = ProgressBar(functools.partial(self.stderr.write, style_func=str)) if show else None
        try:
            load_model(
                removal.model,
                path=removal.model_path,
                model_dir=removal.model_dir,
                progress=bar,
            )
        except EngineError as exc:
            raise CommandError(str(exc)) from exc
        finally:
            if bar:
                bar.finish()

    def _run_batch(
        self,
        jobs: list[Job],
        out_dir: Path,
        extension: str,
        removal: RemovalOptions,
        rendering: RenderOptions,
        verbosity: int,
        matting_solver: Solver,
    ) -> None:
        started = time.monotonic()
        bar = ProgressLine(self.stderr, len(jobs)) if verbosity and self.stderr.isatty() else None
        # remove_background and render each report 0..1; on the bar they share one file's
        # 0..100 % (the network's part is by far the longer one).
        removal_progress = bar.part(0.0, 0.9) if bar else None
        render_progress = bar.part(0.9, 0.1) if bar else None
        written: dict[Path, str] = {}
        failed = 0

        def report(line: str, *, error: bool) -> None:
            if bar:
                bar.clear()
            if error:
                self.stderr.write(line)
            elif verbosity:
                self.stdout.write(line)

        try:
            for index, job in enumerate(jobs, 1):
                name = job.path.name or str(job.path)
                target = out_dir / (job.path.stem + extension)
                problem = job.problem or _target_problem(job.path, target, written)
                if problem:
                    failed += 1
                    report(f"{name}: {problem}", error=True)
                    continue
                if bar:
                    bar.start(index, name)
                try:
                    hints = _read_hint_map(job.hints) if job.hints else None
                    cutout = remove_background(
                        str(job.path), removal, removal_progress, matting_solver=matting_solver
                    )
                    if hints is not None:
                        cutout = _follow_hints(cutout, hints, job.hints)
                    _write_atomically(target, render(cutout, rendering, render_progress))
                except WeightsError as exc:
                    # The model is the same for every file (and loaded above): if it still
                    # fails, trying the rest is pointless.
                    raise CommandError(str(exc)) from exc
                except EngineError as exc:
                    failed += 1
                    report(f"{name}: {exc}", error=True)
                    continue
                except OSError as exc:
                    failed += 1
                    report(f"{name}: {exc.strerror or exc}", error=True)
                    continue
                except Exception as exc:  # keep the batch going; say what broke
                    failed += 1
                    report(f"{name}: unexpected {type(exc).__name__}: {exc}", error=True)
                    continue
                written[target] = name
                notes = f"  ({'; '.join(cutout.notes)})" if cutout.notes else ""
                report(f"{name} -> {target}{notes}", error=False)
        finally:
            if bar:
                bar.clear()

        done = len(jobs) - failed
        elapsed = time.monotonic() - started
        self.stdout.write(
            f"{done} image{'s' if done != 1 else ''} done, {failed} failed in {elapsed:.1f} s"
        )
        if failed:
            raise CommandError(
                f"{failed} of {len(jobs)} input{'s' if len(jobs) != 1 else ''} failed "
                "(see the messages above)"
            )


def _parse_crop(value: str | None) -> tuple[float | None, str | None]:
    """(margin as a fraction or None, an input path that argparse took for the margin)."""
    if value is None:
        return None, None
    text = value.strip().removesuffix("%").strip()
    try:
        percent = float(text)
    except ValueError:
        # `--crop photo.jpg`: the optional margin swallowed an input file.
        if os.path.exists(value):
            return float(DEFAULT_CROP_PERCENT) / 100, value
        raise CommandError(
            f"--crop takes a margin in percent such as 5 or 10%, got {value!r}"
        ) from None
    if not 0 <= percent <= 100 or math.isnan(percent):
        raise CommandError(f"--crop margin must be between 0 and 100 %, got {value!r}")
    return percent / 100, None


def _check_format(output: str, fmt: str | None, background: str | None) -> str:
    if output == "mask":
        if fmt not in (None, "png"):
            raise CommandError("--output mask always writes PNG: leave out --format")
        if background is not None:
            raise CommandError("--background has no effect with --output mask: leave it out")
        return "png"
    return fmt or "png"


def _parse_background_option(spec: str | None) -> Background:
    if spec is None:
        return Background()
    try:
        return parse_background(spec)
    except EngineError as exc:
        raise CommandError(f"--background: {exc}") from exc


def _make_out_dir(path: str) -> Path:
    out_dir = Path(path)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except FileExistsError:
        raise CommandError(f"output folder {path!r} is an existing file") from None
    except OSError as exc:
        raise CommandError(f"cannot create output folder {path!r}: {exc.strerror}") from exc
    return out_dir


def _expand_inputs(inputs: list[str]) -> list[Job]:
    """Files as given, folders as their images (sorted, non-recursive), unknowns as problems."""
    jobs: list[Job] = []
    for raw in inputs:
        path = Path(raw)
        if path.is_dir():
            images = sorted(
                child
                for child in path.iterdir()
                if child.is_file() and child.suffix.lower() in IMAGE_EXTENSIONS
            )
            if images:
                jobs.extend(Job(image) for image in images)
            else:
                extensions = " ".join(sorted(ext[1:] for ext in IMAGE_EXTENSIONS))
                jobs.append(Job(path, f"no images in this folder (looked for {extensions})"))
        elif path.is_file():
            jobs.append(Job(path))
        else:
            jobs.append(Job(path, "no such file or folder"))
    return jobs


def _attach_hints(jobs: list[Job], hints: str | None) -> list[Job]:
    """``jobs`` with their hint maps: a file for the single input, or <stem>.png from a
    folder (an input without one runs without marks)."""
    if hints is None:
        return jobs
    path = Path(hints)
    if path.is_dir():
        return [
            dataclasses.replace(job, hints=path / f"{job.path.stem}.png")
            if (path / f"{job.path.stem}.png").is_file()
            else job
            for job in jobs
        ]
    if not path.is_file():
        raise CommandError(f"--hints: no such file or folder {hints!r}")
    if len(jobs) != 1:
        raise CommandError(
            "--hints with a file goes with a single input; for several inputs give a folder "
            "holding <input name>.png for each"
        )
    return [dataclasses.replace(jobs[0], hints=path)]


def _read_hint_map(path: Path) -> np.ndarray:
    """The hint map at ``path`` as H×W uint8; OptionsError unless it is an 8-bit grey PNG."""
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as image:
            if image.format != "PNG" or image.mode != "L":
                raise OptionsError(
                    f"hint map {path.name} must be an 8-bit grey PNG, not "
                    f"{image.format} {image.mode}"
                )
            return np.asarray(image).copy()
    except (UnidentifiedImageError, SyntaxError, ValueError) as exc:
        raise OptionsError(f"hint map {path.name} is not a readable PNG ({exc})") from exc


def _follow_hints(cutout: Cutout, hints: np.ndarray, path: Path) -> Cutout:
    height, width = cutout.alpha.shape
    if hints.shape != (height, width):
        raise OptionsError(
            f"hint map {path.name} is {hints.shape[1]}×{hints.shape[0]} but the photo is "
            f"{width}×{height}"
        )
    photo = cutout.original if cutout.original is not None else cutout.foreground
    refined = apply_hints(photo, cutout.foreground, cutout.alpha, hints)
    return dataclasses.replace(cutout, alpha=refined.alpha, foreground=refined.foreground)


def _target_problem(source: Path, target: Path, written: dict[Path, str]) -> str | None:
    if target in written:
        return (
            f"its result {target.name} was already written for {written[target]} in this "
            "batch: rename one of them"
        )
    if target.exists() and target.resolve() == source.resolve():
        return "the result would overwrite the input: choose another -o folder"
    return None


def _write_atomically(target: Path, data: bytes) -> None:
    # A partly written file never sits at the final name, even if the process is killed.
    partial = target.with_name(f".{target.name}.part")
    try:
        partial.write_bytes(data)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
