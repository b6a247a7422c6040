"""The preset background photos shipped in static/backgrounds/ (made by
tools/make_backgrounds.py, so they carry no third-party licence)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from django.contrib.staticfiles import finders


@dataclass(frozen=True)
class Preset:
    label: str
    static_path: str  # relative to the static root
    thumb_path: str

    def file_path(self) -> Path:
        """Where the full-size picture is on disk (found through the staticfiles finders)."""
        found = finders.find(self.static_path)
        if not found:
            raise FileNotFoundError(f"preset background {self.static_path} is missing")
        return Path(found if isinstance(found, str) else found[0])


def _preset(name: str, label: str) -> tuple[str, Preset]:
    return name, Preset(label, f"backgrounds/{name}.jpg", f"backgrounds/{name}-thumb.jpg")


PRESETS: dict[str, Preset] = dict(
    [
        _preset("studio", "Grey studio"),
        _preset("sunset", "Sunset sky"),
        _preset("bokeh", "City lights"),
        _preset("mint", "Pastel mint"),
        _preset("concrete", "Concrete wall"),
        _preset("ocean", "Calm sea"),
    ]
)
