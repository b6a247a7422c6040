"""The engine on a CUDA GPU: chosen by default when PyTorch sees one, with the masks the CPU
gives. CI has no GPU, so these skip there; they run wherever a GPU is present."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from bgremover.engine.pipeline import RemovalOptions, remove_background
from bgremover.engine.segment import Segmenter
from bgremover.engine.weights_loader import load_model

pytestmark = pytest.mark.skipif(
    not torch.cuda.is_available(), reason="no CUDA device: PyTorch sees no GPU here"
)

PHOTOS = ("ecssd_0011", "ecssd_0027", "ecssd_0055", "ecssd_0557")


def _iou(a: np.ndarray, b: np.ndarray) -> float:
    return float((a & b).sum() / (a | b).sum())


@pytest.fixture(scope="module")
def photos(eval_dir: Path) -> list[np.ndarray]:
    return [
        np.asarray(Image.open(eval_dir / "sod" / "images" / f"{stem}.jpg").convert("RGB"))
        for stem in PHOTOS
    ]


def test_auto_device_is_the_gpu(u2netp_weights):
    loaded = load_model(path=u2netp_weights)
    assert loaded.device.type == "cuda"
    assert all(p.is_cuda for p in loaded.module.parameters())
    segmenter = Segmenter(loaded)
    assert segmenter.dtype == torch.float32
    assert all(p.is_cuda for p in segmenter.module.parameters())


def test_gpu_maps_match_the_cpu_maps(u2netp_weights, photos):
    gpu_model = load_model(path=u2netp_weights, device="cuda")
    cpu_model = load_model(path=u2netp_weights, device="cpu")
    gpu = np.stack(Segmenter(gpu_model, "fp32").predict(photos))
    cpu = np.stack(Segmenter(cpu_model, "fp32").predict(photos))
    # TF32 convolutions on the GPU round differently from the CPU's float32: small drift only.
    assert np.abs(gpu - cpu).mean() < 2e-3
    for ours, reference in zip(gpu >= 0.5, cpu >= 0.5, strict=True):
        assert _iou(ours, reference) > 0.995


def test_whole_cutout_on_the_gpu_matches_the_cpu_and_the_truth(u2netp_weights, eval_dir):
    source = eval_dir / "sod" / "images" / "ecssd_0027.jpg"
    truth = np.asarray(Image.open(eval_dir / "sod" / "masks" / "ecssd_0027.png").convert("L"))
    alphas = {}
    for device in ("cuda", "cpu"):
        options = RemovalOptions(
            model_path=u2netp_weights, matting="on", device=device, precision="fp32"
        )
        alphas[device] = remove_background(source, options).alpha
    assert alphas["cuda"].shape == truth.shape
    assert _iou(alphas["cuda"] >= 128, alphas["cpu"] >= 128) > 0.99
    assert _iou(alphas["cuda"] >= 128, truth >= 128) > 0.85
