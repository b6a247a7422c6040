"""Network forward time at 320×320 and the work it does (conv MACs counted with hooks)."""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch
from torch import nn

from bench.speed import time_calls

INPUT_SIZE = 320


def count_conv_macs(model: nn.Module, size: int = INPUT_SIZE) -> int:
    """Multiply-accumulates of every Conv2d in one forward pass on a 1×3×size×size input.

    Each output element of a convolution costs (in_channels / groups) × kh × kw MACs;
    biases, batch norm, pooling, upsampling and activations are not counted.
    """
    total = 0

    def hook(module: nn.Conv2d, _inputs: tuple, output: torch.Tensor) -> None:
        nonlocal total
        kh, kw = module.kernel_size
        total += output.numel() * (module.in_channels // module.groups) * kh * kw

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, nn.Conv2d)]
    device = next(model.parameters()).device
    try:
        with torch.inference_mode():
            model(torch.zeros(1, 3, size, size, device=device))
    finally:
        for handle in handles:
            handle.remove()
    return total


def sample_input(batch_size: int = 1, size: int = INPUT_SIZE, seed: int = 0) -> np.ndarray:
    """A normalised-looking N×3×size×size float32 batch (values like a real photo's)."""
    shape = (batch_size, 3, size, size)
    return np.random.default_rng(seed).normal(0.0, 1.0, shape).astype(np.float32)


def time_forward(
    forward: Callable[[np.ndarray], object],
    gflop: float,
    repeats: int = 20,
    warmup: int = 3,
    batch_size: int = 1,
) -> dict:
    """Median seconds per call on a batch and the effective GFLOP/s at that median
    (``gflop`` is the work of one image's pass)."""
    batch = sample_input(batch_size)
    timing = time_calls(lambda: forward(batch), repeats=repeats, warmup=warmup)
    return {
        **timing,
        "batch_size": batch_size,
        "gflop_per_s": gflop * batch_size / timing["median_s"],
    }
