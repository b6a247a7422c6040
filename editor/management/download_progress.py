"""A terminal progress bar for weight downloads (fetch_models, and removebg when it has to
download). Kept apart from the commands so that importing it does not import torch."""

from __future__ import annotations

import time
from collections.abc import Callable

MB = 1_000_000


class ProgressBar:
    """A one-line terminal progress bar fed by download_weights' progress callback."""

    width = 30
    interval = 0.2  # seconds between redraws, so huge downloads do not flood the terminal

    def __init__(self, write: Callable[..., None]) -> None:
        self.write = write
        self.last_drawn = 0.0
        self.drawn_any = False

    def __call__(self, done: int, total: int | None) -> None:
        now = time.monotonic()
        if now - self.last_drawn < self.interval and done != total:
            return
        self.last_drawn = now
        self.drawn_any = True
        if total:
            filled = self.width * done // total
            bar = "#" * filled + "-" * (self.width - filled)
            self.write(
                f"\r  [{bar}] {100 * done // total:3d}%  {done / MB:.1f} / {total / MB:.1f} MB",
                ending="",
            )
        else:
            self.write(f"\r  {done / MB:.1f} MB", ending="")

    def finish(self) -> None:
        if self.drawn_any:
            self.write("")
