"""``manage.py removebg``: remove the background of image files from the command line.

Runs the same engine as the web app, without the database: nothing is stored, the results
go straight to the output folder. One bad file does not stop the batch; the exit status is
non-zero when any file failed.
"""

from __future__ import annotations

import contextlib
import dataclasses
import functools
import math
import os
import time
from argparse import ArgumentParser, ArgumentTypeError, RawDescriptionHelpFormatter
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, DjangoHelpFormatter

from bgremover.engine.compose import Background, parse_background
from bgremover.engine.encode import FORMATS
from bgremover.engine.errors import EngineError
from bgremover.engine.matting import MattingProcess, Solver, solve_working_size
from bgremover.engine.pipeline import RemovalOptions, RenderOptions, load_model_for
from editor.engine_process import removal_options
from editor.management.batch_progress import BatchProgress
from editor.management.batch_workers import WorkerPool, default_jobs
from editor.management.download_progress import ProgressBar
from editor.management.removebg_files import Job, Outcome, Task, process_file
from editor.management.removebg_layout import add_layout_arguments, layout_options
from editor.weights_advice import explained

IMAGE_EXTENSIONS = frozenset(
    {".jpg", ".jpeg", ".png", ".webp", ".gif", ".bmp", ".tif", ".tiff", ".heic", ".heif"}
)
DEFAULT_CROP_PERCENT = "5"

HELP = """\
Remove the background of images and write the results to OUTDIR as <input name>.<ext>.

A folder as INPUT means every image directly inside it (by extension: jpg jpeg png webp gif
bmp tif tiff heic heif). Files that fail are reported by name and the others still get done;
the exit status is 1 when any file failed.

Large folders: --jobs runs several files at once (default: one worker per core), and
--skip-existing resumes an interrupted batch. The command uses no database and needs no
SECRET_KEY, e.g.
    python manage.py removebg photos/ -o cutouts/ --background '#ffffff' --skip-existing
"""


class HelpFormatter(DjangoHelpFormatter, RawDescriptionHelpFormatter):
    """Django's option order, and the description's line breaks and example kept."""


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
            help="transparent (default), a colour (#RRGGBB, #RGB, #RRGGBBAA with alpha, '#' "
            "optional, or a CSS name such as white), blur, blur:NN (1-100) or an image file",
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
        add_layout_arguments(parser)
        parser.add_argument(
            "--hints",
            metavar="PATH",
            help="keep/remove marks the cut-out follows: an 8-bit grey PNG the size of the "
            "photo (255 keep, 0 remove, anything else no mark) for a single input, or a "
            "folder holding <input name>.png for each input (inputs without one run as usual)",
        )
        parser.add_argument(
            "-j",
            "--jobs",
            type=_positive_int,
            default=None,
            metavar="N",
            help=f"files processed at once, each in a worker process of its own "
            f"(default: {default_jobs()} here, one per core)",
        )
        parser.add_argument(
            "--skip-existing",
            action="store_true",
            help="leave out inputs whose result is already in OUTDIR (to resume a batch)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        inputs: list[str] = list(options["inputs"])
        crop_margin, crop_input = _parse_crop(options["crop"])
        if crop_input is not None:
            inputs.insert(0, crop_input)
        output = options["output"]
        fmt = _check_format(output, options["format"], options["background"])
        background = _parse_background_option(options["background"])
        if output == "cutout" and fmt == "jpeg" and not background.opaque:
            raise CommandError(
                "JPEG cannot store transparency: add --background (e.g. --background '#ffffff' "
                "or --background blur), or choose --format png or webp"
            )
        layout = layout_options(options, output)
        # The app's engine settings, with what the command line chooses; files on disk are
        # not held to the upload limit.
        removal = dataclasses.replace(
            removal_options(options["matting"]),
            model=options["model"] or settings.DEFAULT_MODEL,
            model_path=options["model_path"],
            flip=not options["no_tta"],
            max_pixels=RemovalOptions.max_pixels,
        )
        out_dir = _make_out_dir(options["out_dir"])
        extension = ".png" if output == "mask" else FORMATS[fmt][1]
        jobs = _attach_hints(_expand_inputs(inputs), options["hints"])
        tasks, problems, skipped = _plan(jobs, out_dir, extension, options["skip_existing"])
        if skipped and options["verbosity"]:
            self.stdout.write(
                f"Skipping {_count(skipped, 'input')} whose result is already in {out_dir}"
            )
        workers = min(options["jobs"] or default_jobs(), len(tasks))
        # Started before torch is imported (by _load_model), so that pymatting's start-up
        # runs on the other core meanwhile (see MattingProcess). Workers solve their own.
        helper = MattingProcess() if removal.matting != "off" and workers == 1 else None
        try:
            if tasks:
                self._load_model(removal, options["verbosity"])
            rendering = RenderOptions(
                background=background,
                crop_margin=crop_margin,
                output=output,
                format=fmt,
                **layout,
            )
            self._run_batch(
                tasks,
                problems,
                skipped,
                removal,
                rendering,
                verbosity=options["verbosity"],
                workers=workers,
                matting_solver=helper or solve_working_size,
            )
        finally:
            if helper:
                helper.close()

    def _load_model(self, removal: RemovalOptions, verbosity: int) -> None:
        """Load the network (downloading its weights if need be, with a bar on a terminal)
        before any file: a weights problem stops the command at once instead of failing every
        file. The engine keeps the model, so remove_background finds it loaded."""
        show = verbosity > 0 and self.stderr.isatty()
        bar = ProgressBar(functools.partial(self.stderr.write, style_func=str)) if show else None
        try:
            load_model_for(removal, progress=bar)
        except EngineError as exc:
            raise CommandError(explained(exc)) from exc
        finally:
            if bar:
                bar.finish()

    def _run_batch(
        self,
        tasks: list[Task],
        problems: list[tuple[Job, str]],
        skipped: int,
        removal: RemovalOptions,
        rendering: RenderOptions,
        verbosity: int,
        workers: int,
        matting_solver: Solver,
    ) -> None:
        total = len(tasks) + len(problems)
        progress = BatchProgress(
            total, bar=self.stderr if verbosity and self.stderr.isatty() else None
        )

        def report(job: Job, line: str, outcome: Outcome, worked: bool = True) -> None:
            figures = progress.file_done(outcome.ok, worked)
            progress.clear()
            if not outcome.ok:
                self.stderr.write(f"{figures} {_name(job)}: {line}")
            elif verbosity:
                self.stdout.write(f"{figures} {_name(job)}{line}")
            progress.draw()

        for job, problem in problems:
            report(job, problem, Outcome(ok=False, message=problem), worked=False)
        progress.draw()  # at once: workers take seconds to load the network
        if workers > 1:
            results = WorkerPool(workers, removal, rendering).run(tasks)
        else:
            results = _in_this_process(tasks, removal, rendering, progress, matting_solver)
        try:
            with contextlib.closing(results):  # stops the workers however the loop ends
                for task, outcome in results:
                    if outcome.fatal:
                        raise CommandError(outcome.message)
                    if outcome.ok:
                        notes = f"  ({outcome.message})" if outcome.message else ""
                        report(task.job, f" -> {task.target}{notes}", outcome)
                    else:
                        report(task.job, outcome.message, outcome)
        finally:
            progress.clear()

        done = total - progress.failed
        elapsed = time.monotonic() - progress.started
        self.stdout.write(
            f"{_count(done, 'image')} done, {progress.failed} failed"
            + (f", {skipped} skipped (result already there)" if skipped else "")
            + f" in {elapsed:.1f} s"
            + (f" ({done / elapsed * 60:.1f} images/min)" if done and elapsed > 0 else "")
        )
        if progress.failed:
            raise CommandError(
                f"{progress.failed} of {_count(total, 'input')} failed (see the messages above)"
            )


def _in_this_process(
    tasks: Iterable[Task],
    removal: RemovalOptions,
    rendering: RenderOptions,
    progress: BatchProgress,
    matting_solver: Solver,
) -> Iterator[tuple[Task, Outcome]]:
    """One file after the other in this process, each file's stages shown on the bar."""
    for task in tasks:
        progress.file_started(_name(task.job))
        stage = progress.stage if progress.bar else None
        yield task, process_file(task, removal, rendering, stage, matting_solver)


def _name(job: Job) -> str:
    return job.path.name or str(job.path)


def _count(number: int, noun: str) -> str:
    return f"{number} {noun}{'s' if number != 1 else ''}"


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise ArgumentTypeError(f"must be a whole number of 1 or more, not {text!r}")
    return value


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


def _plan(
    jobs: list[Job], out_dir: Path, extension: str, skip_existing: bool
) -> tuple[list[Task], list[tuple[Job, str]], int]:
    """(tasks to run, inputs known to be bad with the reason, inputs skipped because their
    result is already there). Each result file is claimed by the first input that maps to
    it, before any work, so that workers running at once never write the same file."""
    tasks: list[Task] = []
    problems: list[tuple[Job, str]] = []
    claimed: dict[Path, Job] = {}
    inputs = {job.path.resolve(): job for job in jobs}
    skipped = 0
    for job in jobs:
        target = out_dir / (job.path.stem + extension)
        overwritten = inputs.get(target.resolve()) if target.exists() else None
        if job.problem:
            problems.append((job, job.problem))
        elif target in claimed:
            problems.append(
                (
                    job,
                    f"its result {target.name} is also the result of {_name(claimed[target])} "
                    "in this batch: rename one of them",
                )
            )
        elif overwritten is not None:
            which = "the input" if overwritten is job else f"the input {_name(overwritten)}"
            problems.append((job, f"the result would overwrite {which}: choose another -o folder"))
        elif skip_existing and target.exists():
            skipped += 1
        else:
            claimed[target] = job
            tasks.append(Task(job, target))
    return tasks, problems, skipped
