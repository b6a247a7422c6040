"""Running ``manage.py removebg`` from the tests, in this process."""

from __future__ import annotations

import io

from django.core.management import call_command
from django.core.management.base import CommandError


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
