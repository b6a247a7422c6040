"""Running ``manage.py removebg`` from the tests, in this process, on small photos."""

from __future__ import annotations

import io
from collections.abc import Iterable
from pathlib import Path

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
