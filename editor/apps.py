from typing import Any

from django.apps import AppConfig
from django.core import checks
from django.db.backends.signals import connection_created


def use_sqlite_wal(sender: Any, connection: Any, **kwargs: Any) -> None:
    """WAL lets page requests read while a job worker writes progress (SQLite only)."""
    if connection.vendor == "sqlite" and not connection.is_in_memory_db():
        with connection.cursor() as cursor:
            cursor.execute("PRAGMA journal_mode=WAL")


class EditorConfig(AppConfig):
    default_auto_field = "django.db.models.BigAutoField"
    name = "editor"

    def ready(self) -> None:
        from editor.ratelimit import check_rate_settings

        connection_created.connect(use_sqlite_wal, dispatch_uid="editor-sqlite-wal")
        checks.register(check_rate_settings)
