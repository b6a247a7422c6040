"""Blocking work from async code in a pool thread of its own, not the request's
thread-sensitive one (Django gives each request one): work that may outlive the request
(deleting a synchronous API call's image after the answer has gone) or that should not wait
behind the request's other synchronous steps. Nothing closes a pool thread's database
connections, so they are closed after each call (a connection the server dropped would
otherwise stay broken in that thread)."""

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
