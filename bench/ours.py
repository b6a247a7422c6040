"""Our side of the comparison: the engine's pipeline in-process and ``manage.py removebg``."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from torch import nn

from bench.data import REPO_ROOT
from bench.quality import AlphaPredictor

if TYPE_CHECKING:
    from bgremover.engine.pipeline import RemovalOptions

Matting = str  # "auto" | "on" | "off", as RemovalOptions.matting


def engine_options(model_path: Path, matting: Matting = "auto") -> RemovalOptions:
    """The engine's options for a bench run, with the device, precision and torch threads
    taken from BGREMOVER_DEVICE, BGREMOVER_PRECISION and BGREMOVER_TORCH_THREADS by the
    parser the app's settings use (the engine itself reads no environment). An unusable value
    raises bgremover.envvars.ConfigError with the message the app stops with."""
    from bgremover.engine.pipeline import RemovalOptions
    from bgremover.envvars import engine_variables

    variables = engine_variables()
    return RemovalOptions(
        model_path=str(model_path),
        matting=matting,
        device=variables.device,
        precision=variables.precision,
        threads=variables.threads,
    )


def predictor(weights: Path, matting: Matting) -> AlphaPredictor:
    """The pipeline's alpha for an image path (what a user's cut-out carries)."""
    from bgremover.engine.pipeline import remove_background

    options = engine_options(weights, matting)
    return lambda image: remove_background(str(image), options).alpha


def end_to_end(weights: Path, matting: Matting, image: Path, output: Path) -> Callable[[], None]:
    """One in-process run from the file on disk to the transparent PNG written."""
    from bgremover.engine.pipeline import remove_background, render

    options = engine_options(weights, matting)

    def run() -> None:
        output.write_bytes(render(remove_background(str(image), options)))

    return run


def cli_command(
    python: str, image: Path, out_dir: Path, weights: Path, matting: Matting
) -> list[str]:
    """``manage.py removebg`` on one photo, as a user runs it."""
    return [
        python,
        str(REPO_ROOT / "manage.py"),
        "removebg",
        str(image),
        "-o",
        str(out_dir),
        "--model-path",
        str(weights),
        "--matting",
        matting,
    ]


def network_forward(weights: Path) -> tuple[nn.Module, Callable[[np.ndarray], object]]:
    """Our network as loaded (for counting its work) and the engine's optimised pass
    (``Segmenter.forward``: folded BatchNorm, channels-last, mixed bfloat16 on CPUs with
    native bfloat16)."""
    from bgremover.engine.segment import segmenter_for
    from bgremover.engine.weights_loader import load_model

    options = engine_options(weights)
    loaded = load_model(path=weights, device=options.device, threads=options.threads)
    return loaded.module, segmenter_for(loaded, options.precision).forward
