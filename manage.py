#!/usr/bin/env python
"""Django's command-line utility for administrative tasks."""

import os
import sys

# Commands after which the process ends at once instead of tearing the interpreter down:
# once torch and numba are loaded, the teardown alone takes up to a second (on a 2-core
# machine, a sixth of a 12-megapixel ``removebg`` run) and has nothing left to do, because
# every output file is written (atomically) and closed before the command returns.
FAST_EXIT_COMMANDS = frozenset({"removebg"})


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "bgremover.settings")
    from django.core.management import execute_from_command_line

    if sys.argv[1:2] and sys.argv[1] in FAST_EXIT_COMMANDS:
        try:
            execute_from_command_line(sys.argv)
            status = 0
        except SystemExit as exc:  # a CommandError's exit status, or --help
            if not isinstance(exc.code, int | None):
                raise
            status = exc.code or 0
        sys.stdout.flush()
        sys.stderr.flush()
        os._exit(status)
    execute_from_command_line(sys.argv)


if __name__ == "__main__":
    main()
