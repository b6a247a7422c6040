"""``manage.py db_worker``: django-tasks-db's worker, without the autoreloader by default.

Upstream turns ``--reload`` on whenever DEBUG is: the worker then runs as a child of a
watcher process, and killing the parent (a service manager stopping it, a test) leaves the
child running jobs. Pass ``--reload`` to get it while developing.
"""

from __future__ import annotations

from argparse import ArgumentParser

from django_tasks_db.management.commands import db_worker


class Command(db_worker.Command):
    def add_arguments(self, parser: ArgumentParser) -> None:
        super().add_arguments(parser)
        parser.set_defaults(reload=False)
