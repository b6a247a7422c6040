"""Whether a file holds usable weights: reading a state dict and checking its layout.

Files are checked by their state-dict layout (key names and tensor shapes equal to the
architecture's), not by the download checksum: converted checkpoints such as the shared
``u2netp.pth`` are valid weights with different bytes. PyTorch is imported only inside the
functions, so importing this module stays cheap.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING

from bgremover.engine.errors import WeightsError, WeightsRemedy
from bgremover.engine.weights_catalogue import MODELS, ModelSpec

if TYPE_CHECKING:
    import torch


@functools.cache
def expected_layout(architecture: str) -> dict[str, tuple[int, ...]]:
    """Key → shape of the architecture's state dict (built on the meta device: no memory)."""
    import torch

    from bgremover.engine.model import ARCHITECTURES

    with torch.device("meta"):
        module = ARCHITECTURES[architecture]()
    return {key: tuple(value.shape) for key, value in module.state_dict().items()}


class BadFile(Exception):
    """Why a file is not usable weights, worded to follow the file's name."""


def unusable_file(
    path: Path, reason: BadFile, spec: ModelSpec | None, explicit: bool
) -> WeightsError:
    """The WeightsError for a bad file: one given by path (``explicit``: the caller is told to
    check it) or one found in a model directory (to be replaced)."""
    if explicit:
        return WeightsError(
            f"{path} {reason}. Check the path you gave.",
            remedy=WeightsRemedy.UNUSABLE_PATH,
            model=spec.name if spec else None,
        )
    return WeightsError(
        f"{path} {reason}.", remedy=WeightsRemedy.DAMAGED, model=spec.name if spec else None
    )


def _read_state_dict(path: Path) -> dict[str, torch.Tensor]:
    """The state dict stored in ``path``, unwrapped from ``{"state_dict": …}`` and a
    DataParallel ``module.`` prefix; BadFile for anything that is not one."""
    import torch

    if not path.exists():
        raise BadFile("does not exist")
    if not path.is_file():
        raise BadFile("is not a file")
    try:
        loaded = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as exc:  # torch raises RuntimeError, UnpicklingError, EOFError, …
        # torch's first sentence names the fault (the rest is advice for developers); bare
        # tokens such as a KeyError's "101" say nothing to a person and are left out.
        reason = (str(exc).strip().splitlines() or [""])[0].split(". ")[0]
        detail = f" ({reason[:200]})" if " " in reason else ""
        raise BadFile(
            f"is not a readable PyTorch weights file; it may be truncated or corrupt{detail}"
        ) from exc
    if isinstance(loaded, Mapping) and isinstance(loaded.get("state_dict"), Mapping):
        loaded = loaded["state_dict"]
    if (
        not isinstance(loaded, Mapping)
        or not loaded
        or not all(
            isinstance(key, str) and isinstance(value, torch.Tensor)
            for key, value in loaded.items()
        )
    ):
        raise BadFile(f"does not contain a model state dict (found {type(loaded).__name__})")
    state = dict(loaded)
    if all(key.startswith("module.") for key in state):
        state = {key.removeprefix("module."): value for key, value in state.items()}
    return state


def _layout_problems(state: Mapping[str, torch.Tensor], architecture: str) -> list[str]:
    expected = expected_layout(architecture)
    missing = [key for key in expected if key not in state]
    unexpected = [key for key in state if key not in expected]
    wrong_shape = [
        f"{key} {tuple(state[key].shape)} instead of {shape}"
        for key, shape in expected.items()
        if key in state and tuple(state[key].shape) != shape
    ]
    problems = []
    for label, items in (
        ("missing", missing),
        ("unexpected", unexpected),
        ("wrong shape", wrong_shape),
    ):
        if items:
            shown = ", ".join(items[:3]) + (", …" if len(items) > 3 else "")
            problems.append(f"{len(items)} {label} ({shown})")
    return problems


def checked_state(path: Path, spec: ModelSpec | None) -> tuple[dict[str, torch.Tensor], ModelSpec]:
    """The file's state dict and the spec it fits: ``spec``'s architecture when given, else
    whichever architecture the layout matches. BadFile says what is wrong otherwise."""
    from bgremover.engine.model import ARCHITECTURES

    state = _read_state_dict(path)
    if spec is None:
        for architecture in ARCHITECTURES:
            if not _layout_problems(state, architecture):
                return state, MODELS[architecture]
        raise BadFile(
            "holds neither U²-Net nor U²-NetP weights (its keys and shapes match "
            "no known architecture)"
        )
    problems = _layout_problems(state, spec.architecture)
    if problems:
        others = [
            arch
            for arch in ARCHITECTURES
            if arch != spec.architecture and not _layout_problems(state, arch)
        ]
        looks_like = f". It looks like {others[0]} weights" if others else ""
        raise BadFile(
            f"does not hold {spec.architecture} weights for model {spec.name!r}: "
            f"{'; '.join(problems)}{looks_like}"
        )
    return state, spec


def read_weights(path: str | os.PathLike[str], spec: ModelSpec) -> dict[str, torch.Tensor]:
    """The state dict in ``path``, checked against ``spec``'s architecture; WeightsError
    (naming the file and the fix) when it is missing, unreadable or of another layout."""
    path = Path(path)
    try:
        return checked_state(path, spec)[0]
    except BadFile as exc:
        raise unusable_file(path, exc, spec, explicit=False) from exc
