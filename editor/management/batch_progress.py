"""How far a ``removebg`` batch has got: files finished out of all, images per minute and the
time left at that rate. On a terminal, one bar that rewrites itself in place; elsewhere (a log
file, a pipe) the same figures lead each finished file's line."""

from __future__ import annotations

import shutil
import time
from collections.abc import Callable

from django.core.management.base import OutputWrapper


def format_duration(seconds: float) -> str:
    """``45 s``, ``12 min``, ``2 h 05 min``."""
    if seconds < 90:
        return f"{max(1, round(seconds))} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    return f"{minutes // 60} h {minutes % 60:02d} min"


class BatchProgress:
    """Counts finished files; ``bar`` (a terminal's stream) or None for plain lines."""

    WIDTH = 20

    def __init__(
        self,
        total: int,
        bar: OutputWrapper | None = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.total = total
        self.bar = bar
        self.clock = clock
        self.started = clock()
        self.finished = 0
        self.failed = 0
        self.refused = 0  # known bad before any work (missing, not an image): no time spent
        self.name = ""  # the file being done in this process (one worker only) …
        self.activity = ""  # … and its stage, shown after the figures
        self.shown = ""

    def rate_per_minute(self) -> float | None:
        elapsed = self.clock() - self.started
        worked = self.finished - self.refused
        return worked / elapsed * 60 if worked and elapsed > 0 else None

    def figures(self) -> str:
        """``12/300, 9.3 images/min, 31 min left``: as far as they are known yet."""
        text = f"{self.finished}/{self.total}"
        if self.failed:
            text += f" ({self.failed} failed)"
        rate = self.rate_per_minute()
        if rate is not None:
            text += f", {rate:.1f} images/min" if rate < 100 else f", {rate:.0f} images/min"
            left = self.total - self.finished
            if left:
                text += f", {format_duration(left / rate * 60)} left"
        return text

    def file_done(self, ok: bool, worked: bool = True) -> str:
        """Count one finished file (``worked`` False: refused before any work, left out of
        the rate); the figures to lead its line with."""
        self.finished += 1
        self.failed += not ok
        self.refused += not worked
        self.name = self.activity = ""
        return f"[{self.figures()}]"

    def file_started(self, name: str) -> None:
        self.name = name if len(name) <= 40 else "…" + name[-39:]
        self.stage("starting", 0.0)

    def stage(self, stage: str, fraction: float) -> None:
        """A progress callback for the file being done in this process."""
        self.activity = f"{stage} {min(1.0, max(0.0, fraction)):.0%}"
        self.draw()

    def draw(self) -> None:
        """Redraw the bar (a no-op without one, or when nothing it shows changed)."""
        if self.bar is None:
            return
        filled = self.WIDTH * self.finished // max(1, self.total)
        text = f"[{'#' * filled}{'-' * (self.WIDTH - filled)}] {self.figures()}"
        if self.name:  # the name last: the part a narrow terminal cuts off
            text += f"  {self.activity}  {self.name}"
        # A line longer than the terminal would wrap, and \r only goes back to the last row.
        text = text[: max(20, shutil.get_terminal_size().columns - 1)]
        if text != self.shown:
            # style_func=str: Django would otherwise paint everything on stderr as an error
            self.bar.write(f"\r\033[K{text}", style_func=str, ending="")
            self.bar.flush()
            self.shown = text

    def clear(self) -> None:
        """Take the bar off the screen (before a line is printed, and at the end)."""
        if self.bar is not None and self.shown:
            self.bar.write("\r\033[K", style_func=str, ending="")
            self.bar.flush()
            self.shown = ""
