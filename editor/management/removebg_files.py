"""One file of a ``removebg`` batch, from the photo on disk to its result written: the part that
runs in the command's own process or in a worker process (editor.management.batch_workers).

Imports the engine but not Django, so that a worker process never loads the settings."""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from bgremover.engine.errors import EngineError, WeightsError
from bgremover.engine.hint_maps import follow_hint_map, read_hint_map
from bgremover.engine.matting import Solver, solve_working_size
from bgremover.engine.pipeline import (
    Progress,
    RemovalOptions,
    RenderOptions,
    remove_background,
    render,
)
from editor.weights_advice import explained

# remove_background and render each report 0..1; they share one file's 0..1 this way (the
# network's part is by far the longer one).
REMOVAL_SHARE = 0.9


@dataclass(frozen=True)
class Job:
    """One entry of the batch: an image file to process, or an input that is already known
    to be bad (``problem`` says why)."""

    path: Path
    problem: str | None = None
    hints: Path | None = None  # a hint map (--hints) for this image


@dataclass(frozen=True)
class Task:
    """A job to run and the file its result goes to."""

    job: Job
    target: Path


@dataclass(frozen=True)
class Outcome:
    """How a task ended. ``message``: the notes on a done file (may be empty) or why it
    failed. ``fatal``: the failure concerns every file (the model), so the batch stops."""

    ok: bool
    message: str = ""
    fatal: bool = False


def process_file(
    task: Task,
    removal: RemovalOptions,
    rendering: RenderOptions,
    progress: Progress | None = None,
    matting_solver: Solver = solve_working_size,
) -> Outcome:
    """Cut out ``task``'s photo and write the result; never raises for a bad file."""
    job = task.job
    removal_progress = render_progress = None
    if progress is not None:
        removal_progress = _part(progress, 0.0, REMOVAL_SHARE)
        render_progress = _part(progress, REMOVAL_SHARE, 1.0 - REMOVAL_SHARE)
    try:
        hints = read_hint_map(job.hints, job.hints.name) if job.hints else None
        cutout = remove_background(
            str(job.path), removal, removal_progress, matting_solver=matting_solver
        )
        if hints is not None and job.hints is not None:
            cutout = follow_hint_map(cutout, hints, job.hints.name)
        write_atomically(task.target, render(cutout, rendering, render_progress))
    except WeightsError as exc:
        # The model is the same for every file: if it fails, trying the rest is pointless.
        return Outcome(ok=False, message=explained(exc), fatal=True)
    except EngineError as exc:
        return Outcome(ok=False, message=str(exc))
    except OSError as exc:
        return Outcome(ok=False, message=exc.strerror or str(exc))
    except Exception as exc:  # keep the batch going; say what broke
        return Outcome(ok=False, message=f"unexpected {type(exc).__name__}: {exc}")
    return Outcome(ok=True, message="; ".join(cutout.notes))


def _part(progress: Progress, start: float, share: float) -> Progress:
    """A progress callback mapping one step's 0..1 onto start..start+share of the file."""
    return lambda stage, fraction: progress(stage, start + share * fraction)


def write_atomically(target: Path, data: bytes) -> None:
    """A partly written file never sits at the final name, even if the process is killed
    (which is also what lets --skip-existing trust any result it finds)."""
    partial = target.with_name(f".{target.name}.part")
    # One left by an interrupted run goes; so does a link planted at its name (the folder may
    # hold others' files): unlinked, not followed, and the new file must be new.
    partial.unlink(missing_ok=True)
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_NOFOLLOW", 0)
    try:
        with os.fdopen(os.open(partial, flags, 0o666), "wb") as stream:
            stream.write(data)
        os.replace(partial, target)
    finally:
        partial.unlink(missing_ok=True)
