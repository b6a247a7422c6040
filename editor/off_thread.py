"""Blocking work from async views, off the request thread: Django runs every synchronous view
of an ASGI server in one shared thread, so a render or a URL fetch there would hold up every
page. A pool thread's database connections are closed after each call (nothing else would
close them, and a connection a server dropped would stay broken in that thread)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import ParamSpec, TypeVar

from asgiref.sync import sync_to_async
from django.db import connections

P = ParamSpec("P")
T = TypeVar("T")


def off_thread(work: Callable[P, T]) -> Callable[P, Awaitable[T]]:
    """``work`` as an awaitable run in a pool thread."""

    def run(*args: P.args, **kwargs: P.kwargs) -> T:
        try:
            return work(*args, **kwargs)
        finally:
            connections.close_all()

    return sync_to_async(run, thread_sensitive=False)
