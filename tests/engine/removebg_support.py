"""Running ``manage.py removebg`` from the tests, in this process, on small photos, and the
two photos the command's tests share (bind ``photo_sources`` and ``photos`` in a module to use
them)."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pytest
from django.core.management import call_command
from django.core.management.base import CommandError
from PIL import Image


class Terminal(io.StringIO):
    """A stderr that says it is a terminal, as a real one would."""

    def isatty(self) -> bool:
        return True


def removebg(*args: object, tty: bool = False) -> tuple[str, str]:
    """Run the command in-process; return (stdout, stderr). CommandError propagates.
    One worker, in this process, unless the arguments say --jobs: worker processes would
    each load torch and the network again."""
    arguments = [str(arg) for arg in args]
    if not any(arg in ("--jobs", "-j") or arg.startswith("--jobs=") for arg in arguments):
        arguments += ["--jobs", "1"]
    out, err = io.StringIO(), Terminal() if tty else io.StringIO()
    try:
        call_command("removebg", *arguments, stdout=out, stderr=err)
    except CommandError as exc:
        exc.stdout, exc.stderr = out.getvalue(), err.getvalue()
        raise
    return out.getvalue(), err.getvalue()


def small_copies(sources: Iterable[Path], folder: Path, side: int) -> list[Path]:
    """JPEG copies of ``sources`` at most ``side`` pixels on a side, in a new ``folder``
    (small enough that the real pipeline runs in a second or two)."""
    folder.mkdir()
    paths = []
    for source in sources:
        with Image.open(source) as image:
            image = image.convert("RGB")
            image.thumbnail((side, side))
            path = folder / source.name
            image.save(path, quality=92)
            paths.append(path)
    return paths


@pytest.fixture(scope="module")
def photo_sources(eval_dir: Path) -> list[Path]:
    """Two photos whose ground-truth masks have background in every corner."""
    chosen = []
    for image in sorted((eval_dir / "sod/images").glob("ecssd_*.jpg")):
        mask = np.asarray(Image.open(eval_dir / "sod/masks" / f"{image.stem}.png"))
        if not mask[[0, 0, -1, -1], [0, -1, 0, -1]].any():
            chosen.append(image)
        if len(chosen) == 2:
            return chosen
    pytest.fail("fewer than two evaluation photos with background corners")


@pytest.fixture
def photos(tmp_path: Path, photo_sources: list[Path]) -> list[Path]:
    """The two photos downscaled to at most 400 px, in their own folder."""
    return small_copies(photo_sources, tmp_path / "in", 400)
