"""Where the shared data lives, the reference scorer, and subsets of the evaluation split."""

from __future__ import annotations

import importlib.util
import os
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

REPO_ROOT = Path(__file__).resolve().parent.parent


def shared_root() -> Path:
    """``$BGREMOVER_SHARED`` or ``../shared`` beside the checkout; it must exist."""
    root = Path(os.getenv("BGREMOVER_SHARED", str(REPO_ROOT.parent / "shared")))
    if not (root / "eval").is_dir():
        raise SystemExit(
            f"shared evaluation data not found at {root}/eval: set BGREMOVER_SHARED "
            "to the folder that holds eval/, models/ and tools/"
        )
    return root


def load_scorer(shared: Path) -> ModuleType:
    """Import ``shared/tools/score.py`` by path, so our numbers are its numbers."""
    path = shared / "tools" / "score.py"
    spec = importlib.util.spec_from_file_location("shared_score", path)
    if spec is None or spec.loader is None:
        raise SystemExit(f"reference scorer not found at {path}")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True)
class EvalSplit:
    """An evaluation folder laid out like ``shared/eval`` (the whole split or a subset)."""

    root: Path

    @property
    def sod_images(self) -> list[Path]:
        return sorted((self.root / "sod" / "images").glob("*.jpg"))

    @property
    def matting_images(self) -> list[Path]:
        return sorted((self.root / "matting" / "images").glob("*.png"))

    @property
    def sod_masks(self) -> Path:
        return self.root / "sod" / "masks"

    @property
    def matting_alpha(self) -> Path:
        return self.root / "matting" / "alpha"

    @property
    def matting_trimaps(self) -> Path:
        return self.root / "matting" / "trimaps_large"


_SOD_FILES = (("images", ".jpg"), ("masks", ".png"))
_MATTING_FILES = (
    ("images", ".png"),
    ("alpha", ".png"),
    ("trimaps", ".png"),
    ("trimaps_large", ".png"),
)


def make_subset(
    source: EvalSplit, dst: Path, sod_stems: list[str], matting_stems: list[str]
) -> EvalSplit:
    """Symlink the named items of ``source`` into ``dst`` with the same layout."""
    for kind, stems, files in (
        ("sod", sod_stems, _SOD_FILES),
        ("matting", matting_stems, _MATTING_FILES),
    ):
        for folder, suffix in files:
            (dst / kind / folder).mkdir(parents=True, exist_ok=True)
            for stem in stems:
                target = source.root / kind / folder / f"{stem}{suffix}"
                if not target.is_file():
                    raise SystemExit(f"no {kind} item {stem!r} in {source.root} ({target})")
                (dst / kind / folder / target.name).symlink_to(target.resolve())
    return EvalSplit(dst)


def spread(items: list[str], count: int) -> list[str]:
    """``count`` items evenly spaced through ``items`` (all of them when count covers it)."""
    if count >= len(items):
        return list(items)
    step = len(items) / count
    return [items[int(i * step)] for i in range(count)]
