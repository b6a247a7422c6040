"""The optimised forward pass (folded BatchNorm, channels-last, mixed bfloat16) against the
plain network, on real photos with the real U²-NetP weights."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bgremover.engine.errors import OptionsError
from bgremover.engine.preprocess import to_network_input
from bgremover.engine.segment import (
    FLOAT32_BLOCKS,
    PRECISION_ENV,
    Float32Block,
    Segmenter,
    compute_dtype,
    cpu_has_native_bf16,
)
from bgremover.engine.weights import load_model

PHOTOS = ("ecssd_0011", "ecssd_0027", "ecssd_0055", "ecssd_0557")


@pytest.fixture(scope="module")
def photos(eval_dir: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(eval_dir / "sod" / "images" / f"{stem}.jpg").convert("RGB"))
            for stem in PHOTOS]


@pytest.fixture(scope="module")
def plain_maps(u2netp_weights: Path, photos: list[np.ndarray]) -> np.ndarray:
    module = load_model(path=u2netp_weights, device="cpu").module
    with torch.inference_mode():
        return module(torch.from_numpy(to_network_input(photos)))[:, 0].numpy()


def _segmenter(u2netp_weights: Path, monkeypatch: pytest.MonkeyPatch,
               precision: str) -> Segmenter:
    monkeypatch.setenv(PRECISION_ENV, precision)
    return Segmenter(load_model(path=u2netp_weights, device="cpu"))


def test_float32_pass_matches_the_plain_network(u2netp_weights, monkeypatch, photos,
                                                plain_maps):
    segmenter = _segmenter(u2netp_weights, monkeypatch, "fp32")
    assert segmenter.dtype == torch.float32
    maps = np.stack(segmenter.predict(photos, flip=False))
    assert np.abs(maps - plain_maps).max() < 1e-3


def test_mixed_bfloat16_pass_keeps_the_masks(u2netp_weights, monkeypatch, photos, plain_maps):
    segmenter = _segmenter(u2netp_weights, monkeypatch, "bf16")
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
    monkeypatch.setenv(PRECISION_ENV, "auto")
    expected = torch.bfloat16 if cpu_has_native_bf16() else torch.float32
    assert compute_dtype(torch.device("cpu"), "u2netp") == expected
    assert compute_dtype(torch.device("cuda"), "u2netp") == torch.float32
    # Not measured in bfloat16 yet: float32 unless asked for.
    assert compute_dtype(torch.device("cpu"), "u2net") == torch.float32
    monkeypatch.delenv(PRECISION_ENV)
    assert compute_dtype(torch.device("cpu"), "u2netp") == expected
    monkeypatch.setenv(PRECISION_ENV, "bf16")
    assert compute_dtype(torch.device("cpu"), "u2net") == torch.bfloat16


@pytest.mark.parametrize("value", ["fp16", "double", "1"])
def test_unknown_precision_is_refused_by_name(monkeypatch, value):
    monkeypatch.setenv(PRECISION_ENV, value)
    with pytest.raises(OptionsError, match=PRECISION_ENV):
        compute_dtype(torch.device("cpu"), "u2netp")
