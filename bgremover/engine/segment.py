"""Stage "segmenting": photos normalised into the network's input (to_network_input), and the
network's forward pass, optimised for inference.

Per loaded model, once: BatchNorm folded into the convolutions (the shared u2netp weights
already carry identity BNs; the authors' files do not) and, on CPU, the channels-last memory
layout oneDNN's convolutions prefer, and bfloat16 where the CPU multiplies bfloat16 natively
(AVX512-BF16 or AMX) for the blocks whose weights survive bfloat16's rounding (see
FLOAT32_BLOCKS). Measured on the 2-core machine at 320×320: plain 0.49 s, folded 0.43 s,
+ channels-last 0.33 s, + mixed bfloat16 about 0.2 s. Precision "fp32" turns bfloat16 off.
Tried and not used: a frozen TorchScript graph (0.27–0.42 s once warm, but tracing and its
first optimising runs cost seconds in every new process), torch.compile (0.37 s, after 80 s of
compiling) and oneDNN's blocked tensor layout (0.42 s).
"""

from __future__ import annotations

import copy
import math
import threading
from collections.abc import Sequence

import cv2
import numpy as np
import torch
from PIL import Image
from torch import nn
from torch.nn.utils.fusion import fuse_conv_bn_weights

from bgremover.engine.errors import OptionsError
from bgremover.engine.model import REBNCONV
from bgremover.engine.refine import working_size
from bgremover.engine.weights_loader import LoadedModel

# The authors' normalisation (u2net_test.py: RescaleT(320) + ToTensorLab(flag=0)).
NETWORK_SIZE = 320
_IMAGENET_MEAN = np.array([0.485, 0.456, 0.406], dtype=np.float32)
_IMAGENET_STD = np.array([0.229, 0.224, 0.225], dtype=np.float32)


def to_network_input(images: Sequence[np.ndarray], size: int = NETWORK_SIZE) -> np.ndarray:
    """Float32 N×3×size×size batch: each H×W×3 uint8 photo squeezed to size×size (aspect
    ratio not kept, as in training), divided by its maximum, then ImageNet-normalised."""
    batch = np.empty((len(images), 3, size, size), dtype=np.float32)
    for index, rgb in enumerate(images):
        # Lanczos with a reducing gap: anti-aliased like the authors' resize, and a 12 MP
        # photo shrinks in tens of milliseconds (a box pre-reduction does most of the work).
        small = Image.fromarray(rgb).resize((size, size), Image.LANCZOS, reducing_gap=3.0)
        pixels = np.asarray(small, dtype=np.float32)
        pixels /= max(float(pixels.max()), 1.0)
        pixels -= _IMAGENET_MEAN
        pixels /= _IMAGENET_STD
        batch[index] = pixels.transpose(2, 0, 1)
    return batch


def fold_batchnorm(module: nn.Module) -> nn.Module:
    """A copy of ``module`` (in eval mode) with every REBNCONV's BatchNorm folded into its
    convolution: the same function with one op fewer per block."""
    folded = copy.deepcopy(module).eval()
    for block in folded.modules():
        if isinstance(block, REBNCONV):
            # In place on the copy (torch's fuse_conv_bn_eval deep-copies each convolution
            # again: a tenth of a second for U²-NetP, in every new process).
            conv, bn = block.conv_s1, block.bn_s1
            conv.weight, conv.bias = fuse_conv_bn_weights(
                conv.weight, conv.bias, bn.running_mean, bn.running_var, bn.eps, bn.weight, bn.bias
            )
            block.bn_s1 = nn.Identity()
    return folded


PRECISIONS = ("auto", "fp32", "bf16")

# Per architecture, the blocks that stay float32 when the rest runs in bfloat16. U²-NetP over
# 23 development photos: all-bfloat16 moved the map by 0.0088 on average and flipped 0.77 % of
# pixels at 0.5, almost all of it from rounding stage2d's weights (its folded BatchNorm biases
# reach |1361|, where bfloat16's step is 8); with stage2d in float32: 0.0009 and 0.08 %.
# An architecture without an entry has not been measured, so "auto" keeps it in float32.
FLOAT32_BLOCKS: dict[str, tuple[str, ...]] = {"u2netp": ("stage2d",)}


def cpu_has_native_bf16() -> bool:
    """Whether this CPU has bfloat16 dot-product instructions; elsewhere oneDNN emulates
    bfloat16, more slowly than float32."""
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def compute_dtype(device: torch.device, architecture: str, precision: str = "auto") -> torch.dtype:
    """The dtype the network runs in, from ``precision`` (auto, fp32 or bf16). auto:
    bfloat16 for a measured architecture on a CPU with native bfloat16, else float32."""
    setting = precision.strip().lower() or "auto"
    if setting not in PRECISIONS:
        raise OptionsError(f"Precision must be one of {', '.join(PRECISIONS)}, not {precision!r}.")
    if setting == "bf16" or (
        setting == "auto"
        and device.type == "cpu"
        and architecture in FLOAT32_BLOCKS
        and cpu_has_native_bf16()
    ):
        return torch.bfloat16
    return torch.float32


class Float32Block(nn.Module):
    """Runs ``block`` in float32 inside a bfloat16 network."""

    def __init__(self, block: nn.Module) -> None:
        super().__init__()
        self.block = block

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.block(x.float()).to(torch.bfloat16)


def to_mixed_bfloat16(module: nn.Module, float32_blocks: Sequence[str]) -> nn.Module:
    """``module`` in bfloat16 except the named child blocks, which keep their float32
    weights (converted from the originals, never rounded through bfloat16)."""
    keep = {name: getattr(module, name) for name in float32_blocks}
    for name in keep:
        setattr(module, name, nn.Identity())
    module = module.to(torch.bfloat16)
    for name, block in keep.items():
        setattr(module, name, Float32Block(block))
    return module


class Segmenter:
    """Saliency probabilities for photos from one loaded U²-Net.

    ``predict`` is safe to call from several threads at once."""

    def __init__(self, loaded: LoadedModel, precision: str = "auto") -> None:
        self.device = loaded.device
        self._channels_last = self.device.type == "cpu"
        self.dtype = compute_dtype(self.device, loaded.spec.architecture, precision)
        module = fold_batchnorm(loaded.module).to(self.device)
        if self.dtype == torch.bfloat16:
            module = to_mixed_bfloat16(module, FLOAT32_BLOCKS.get(loaded.spec.architecture, ()))
        if self._channels_last:
            module = module.to(memory_format=torch.channels_last)
        self.module = module

    def _layout(self, batch: torch.Tensor) -> torch.Tensor:
        return batch.contiguous(memory_format=torch.channels_last) if self._channels_last else batch

    def forward(self, batch: np.ndarray) -> np.ndarray:
        """N×3×H×W normalised input → N×H×W probabilities (float32)."""
        tensor = self._layout(torch.from_numpy(batch).to(self.device, self.dtype))
        with torch.inference_mode():
            return self.module(tensor)[:, 0].float().cpu().numpy()

    def predict(
        self, images: Sequence[np.ndarray], *, flip: bool = True, size: int = NETWORK_SIZE
    ) -> list[np.ndarray]:
        """One size×size probability map per H×W×3 uint8 photo. With ``flip``, each photo also
        goes through mirrored and the two maps are averaged (test-time augmentation: on the
        development split it raised max F and S-measure; see the README)."""
        batch = to_network_input(images, size)
        if flip:
            batch = np.concatenate([batch, batch[..., ::-1]])
        maps = self.forward(np.ascontiguousarray(batch))
        count = len(images)
        if flip:
            maps = (maps[:count] + maps[count:, :, ::-1]) / 2
        return [maps[index] for index in range(count)]


# A second look at the photo, at the scale that suits its subject.
#
# A subject that fills most of the photo gets a look from further away: the photo squeezed to
# WIDE_SIZE, where the network's receptive field takes in more of the subject at once; the two
# maps are averaged. It fires when the first map's mean (the subject's soft share of the photo)
# is at least WIDE_MIN_AREA: 48 of the 200 development photos. Development split, mixed
# bfloat16: SOD MAE 0.0418 → 0.0403, max F 0.9183 → 0.9192, S +0.0015; matting SAD 23.4 →
# 17.6, MSE 33.4 → 24.3, most of it on textured subjects (tassels) whose first map missed whole
# parts. 0.25 did alike (matting better, SOD worse); 256 px for every photo lost max F on small
# subjects. The share of the subject's bounding box, tried first, flipped between float32 and
# bfloat16 on photos with stray specks.
WIDE_SIZE = 256
WIDE_MIN_AREA = 0.3
#
# A subject that fills little of the photo gets a closer look: the network sees the whole
# photo squeezed to 320×320, so a small subject gets few of its pixels. The crop around the
# subject (ZOOM_MARGIN of the subject's box as context on each side) goes through the network
# too, and inside the crop the two maps are averaged (replacing the first map instead was
# worse). Development split, SOD, 61 of 182 photos zoomed: MAE 0.0459 → 0.0453, max F 0.9125 →
# 0.9156, S 0.9021 → 0.9052 (both halves); no matting photo qualifies.
ZOOM_MARGIN = 0.25
# Zoom only when the crop is under this share of the photo (a larger crop is nearly the same view)
# and at most this many times (a box of a few pixels is noise, not a subject to look at closer).
ZOOM_MAX_SHARE = 0.6
ZOOM_MAX_FACTOR = 8
# Longer side of the fused map: fine enough to keep the zoomed map's detail (the guided
# upsampling in refine works at this size too).
FUSED_SIDE = 640


def subject_crop(prob: np.ndarray, shape: tuple[int, int]) -> tuple[slice, slice] | None:
    """The region of a photo of ``shape`` (H, W) worth a closer look: the box of what the map
    ``prob`` of the whole photo calls subject, with margins. None when there is no subject or
    the region would not be a closer look (see ZOOM_MAX_SHARE and ZOOM_MAX_FACTOR)."""
    rows, cols = np.nonzero(prob >= 0.5)
    if rows.size == 0:
        return None
    h, w = shape
    scale_y, scale_x = h / prob.shape[0], w / prob.shape[1]
    y0, y1 = rows.min() * scale_y, (rows.max() + 1) * scale_y
    x0, x1 = cols.min() * scale_x, (cols.max() + 1) * scale_x
    pad_y, pad_x = ZOOM_MARGIN * (y1 - y0), ZOOM_MARGIN * (x1 - x0)
    top, bottom = max(0, int(y0 - pad_y)), min(h, math.ceil(y1 + pad_y))
    left, right = max(0, int(x0 - pad_x)), min(w, math.ceil(x1 + pad_x))
    if (bottom - top) * (right - left) >= ZOOM_MAX_SHARE * h * w:
        return None
    if (bottom - top) * ZOOM_MAX_FACTOR < h or (right - left) * ZOOM_MAX_FACTOR < w:
        return None
    return slice(top, bottom), slice(left, right)


def predict_with_second_look(
    segmenter: Segmenter, rgb: np.ndarray, *, flip: bool = True
) -> np.ndarray:
    """The saliency map of the H×W×3 uint8 photo ``rgb``: the network's 320×320 map averaged
    with a wider look for a large subject (see WIDE_MIN_AREA); or, for a small subject (see
    subject_crop), a map of longer side FUSED_SIDE with a closer look at the subject's region
    averaged in; else the first map alone."""
    prob = segmenter.predict([rgb], flip=flip)[0]
    if prob.mean() >= WIDE_MIN_AREA:
        wide = segmenter.predict([rgb], flip=flip, size=WIDE_SIZE)[0]
        return (prob + cv2.resize(wide, prob.shape[::-1], interpolation=cv2.INTER_LINEAR)) / 2
    crop = subject_crop(prob, rgb.shape[:2])
    if crop is None:
        return prob
    closer = segmenter.predict([np.ascontiguousarray(rgb[crop])], flip=flip)[0]
    h, w = rgb.shape[:2]
    width, height = working_size((h, w), FUSED_SIDE)
    fused = cv2.resize(prob, (width, height), interpolation=cv2.INTER_LINEAR)
    rows, cols = crop
    top, bottom = round(rows.start * height / h), round(rows.stop * height / h)
    left, right = round(cols.start * width / w), round(cols.stop * width / w)
    if bottom > top and right > left:
        shrinking = right - left < closer.shape[1]
        closer = cv2.resize(
            closer,
            (right - left, bottom - top),
            interpolation=cv2.INTER_AREA if shrinking else cv2.INTER_LINEAR,
        )
        fused[top:bottom, left:right] = (fused[top:bottom, left:right] + closer) / 2
    return fused


_segmenters: dict[tuple[int, torch.dtype], Segmenter] = {}
_lock = threading.Lock()


def segmenter_for(loaded: LoadedModel, precision: str = "auto") -> Segmenter:
    """The Segmenter for ``loaded`` at ``precision``, built once per process (loaded models
    are cached too). Keyed on the dtype the precision resolves to, as the Segmenter reads it:
    "FP32", " fp32" and an "auto" that means float32 share one Segmenter."""
    key = (id(loaded.module), compute_dtype(loaded.device, loaded.spec.architecture, precision))
    with _lock:
        segmenter = _segmenters.get(key)
        if segmenter is None:
            segmenter = _segmenters[key] = Segmenter(loaded, precision)
        return segmenter
