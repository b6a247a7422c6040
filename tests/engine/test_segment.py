"""The optimised forward pass (folded BatchNorm, channels-last, mixed bfloat16) against the
plain network, on real photos with the real U²-NetP weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bgremover.engine.errors import OptionsError
from bgremover.engine.model import U2NETP
from bgremover.engine.segment import (
    FLOAT32_BLOCKS,
    Float32Block,
    Segmenter,
    compute_dtype,
    cpu_has_native_bf16,
    fold_batchnorm,
    segmenter_for,
    to_network_input,
)
from bgremover.engine.weights_loader import load_model

PHOTOS = ("ecssd_0011", "ecssd_0027", "ecssd_0055", "ecssd_0557")


@pytest.fixture(scope="module")
def photos(eval_dir: Path) -> list[np.ndarray]:
    return [
        np.asarray(Image.open(eval_dir / "sod" / "images" / f"{stem}.jpg").convert("RGB"))
        for stem in PHOTOS
    ]


@pytest.fixture(scope="module")
def plain_maps(u2netp_weights: Path, photos: list[np.ndarray]) -> np.ndarray:
    module = load_model(path=u2netp_weights, device="cpu").module
    with torch.inference_mode():
        return module(torch.from_numpy(to_network_input(photos)))[:, 0].numpy()


def _segmenter(u2netp_weights: Path, precision: str) -> Segmenter:
    return Segmenter(load_model(path=u2netp_weights, device="cpu"), precision)


def test_float32_pass_matches_the_plain_network(u2netp_weights, photos, plain_maps):
    segmenter = _segmenter(u2netp_weights, "fp32")
    assert segmenter.dtype == torch.float32
    maps = np.stack(segmenter.predict(photos, flip=False))
    assert np.abs(maps - plain_maps).max() < 1e-3


def test_folding_keeps_what_real_batchnorms_compute():
    """The shared weights carry identity BatchNorms; the authors' files do not. Folding must
    keep the function of trained statistics too, and leave the loaded module as it was."""
    generator = torch.Generator().manual_seed(7)
    module = U2NETP().eval()
    for bn in (m for m in module.modules() if isinstance(m, torch.nn.BatchNorm2d)):
        channels = bn.num_features
        bn.running_mean.copy_(torch.randn(channels, generator=generator))
        bn.running_var.copy_(torch.rand(channels, generator=generator) + 0.5)
        bn.weight.data.copy_(torch.randn(channels, generator=generator))
        bn.bias.data.copy_(torch.randn(channels, generator=generator))
    folded = fold_batchnorm(module)
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in folded.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in module.modules())
    batch = torch.rand(1, 3, 64, 64, generator=generator)
    with torch.inference_mode():
        expected, got = module(batch), folded(batch)
    assert torch.allclose(got, expected, atol=1e-4)


def test_mixed_bfloat16_pass_keeps_the_masks(u2netp_weights, photos, plain_maps):
    segmenter = _segmenter(u2netp_weights, "bf16")
    assert segmenter.dtype == torch.bfloat16
    for name in FLOAT32_BLOCKS["u2netp"]:
        block = getattr(segmenter.module, name)
        assert isinstance(block, Float32Block)
        assert all(p.dtype == torch.float32 for p in block.parameters())
    assert segmenter.module.stage1.rebnconvin.conv_s1.weight.dtype == torch.bfloat16
    maps = np.stack(segmenter.predict(photos, flip=False))
    assert maps.dtype == np.float32
    # All-bfloat16 moves these maps by about 0.009 on average; the float32 blocks keep it small.
    assert np.abs(maps - plain_maps).mean() < 0.004
    for ours, plain in zip(maps >= 0.5, plain_maps >= 0.5, strict=True):
        assert (ours & plain).sum() / (ours | plain).sum() > 0.985


def test_auto_precision_uses_bfloat16_only_where_the_cpu_has_it(monkeypatch):
    monkeypatch.setenv("BGREMOVER_PRECISION", "fp32")  # the app's setting: the engine ignores it
    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert compute_dtype(torch.device("cpu"), "u2netp") == expected
    assert compute_dtype(torch.device("cpu"), "u2netp", "auto") == expected
    assert compute_dtype(torch.device("cuda"), "u2netp", "auto") == torch.float32
    # Not measured in bfloat16 yet: float32 unless asked for.
    assert compute_dtype(torch.device("cpu"), "u2net", "auto") == torch.float32
    assert compute_dtype(torch.device("cpu"), "u2net", "bf16") == torch.bfloat16
    assert compute_dtype(torch.device("cpu"), "u2netp", "fp32") == torch.float32


@pytest.mark.parametrize("value", ["fp16", "double", "1"])
def test_unknown_precision_is_refused_by_name(value):
    message = f"Precision must be one of auto, fp32, bf16, not '{value}'"
    with pytest.raises(OptionsError, match=message):
        compute_dtype(torch.device("cpu"), "u2netp", value)


def test_one_segmenter_per_resolved_precision(u2netp_weights):
    """Spellings the Segmenter reads alike, and "auto", share the Segmenter of the precision
    they resolve to (not one each: every Segmenter is another copy of the network)."""
    loaded = load_model(path=u2netp_weights, device="cpu")
    fp32 = segmenter_for(loaded, "fp32")
    assert segmenter_for(loaded, "FP32") is fp32
    assert segmenter_for(loaded, " fp32 ") is fp32
    resolved = "bf16" if cpu_has_native_bf16() else "fp32"
    assert segmenter_for(loaded, "auto") is segmenter_for(loaded, resolved)
    assert segmenter_for(loaded, "") is segmenter_for(loaded, "auto")
