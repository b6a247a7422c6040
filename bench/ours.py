"""Our side of the comparison: the engine's pipeline in-process and ``manage.py removebg``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from torch import nn

from bench.data import REPO_ROOT
from bench.forward import torch_forward
from bench.quality import AlphaPredictor

Matting = str  # "auto" | "on" | "off", as RemovalOptions.matting


def predictor(weights: Path, matting: Matting) -> AlphaPredictor:
    """The pipeline's alpha for an image path (what a user's cut-out carries)."""
    from bgremover.engine.pipeline import RemovalOptions, remove_background

    options = RemovalOptions(model_path=str(weights), matting=matting)
    return lambda image: remove_background(str(image), options).alpha


def end_to_end(weights: Path, matting: Matting, image: Path, output: Path) -> Callable[[], None]:
    """One in-process run from the file on disk to the transparent PNG written."""
    from bgremover.engine.pipeline import RemovalOptions, remove_background, render

    options = RemovalOptions(model_path=str(weights), matting=matting)

    def run() -> None:
        output.write_bytes(render(remove_background(str(image), options)))

    return run


def cli_command(python: str, image: Path, out_dir: Path, weights: Path,
                matting: Matting) -> list[str]:
    """``manage.py removebg`` on one photo, as a user runs it."""
    return [python, str(REPO_ROOT / "manage.py"), "removebg", str(image), "-o", str(out_dir),
            "--model-path", str(weights), "--matting", matting]


def network_forward(weights: Path) -> tuple[nn.Module, Callable[[np.ndarray], object]]:
    """Our PyTorch network and one raw pass through it (1×3×320×320 float32 in)."""
    from bgremover.engine.model import U2NETP

    model = U2NETP()
    model.load_state_dict(torch.load(weights, map_location="cpu", weights_only=True))
    return model, torch_forward(model)
