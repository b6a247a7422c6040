"""U²-Net and U²-NetP (Qin et al., Pattern Recognition 2020).

The module tree mirrors the authors' ``model/u2net.py`` so that the official
``u2net.pth``, ``u2netp.pth`` and ``u2net_human_seg.pth`` state dicts load with
``strict=True``. Bilinear upsampling uses ``align_corners=False``, the
convention the weights were trained with.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn


def _upsample_like(src: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    return F.interpolate(src, size=target.shape[2:], mode="bilinear", align_corners=False)


class REBNCONV(nn.Module):
    """3×3 (dilated) convolution → BatchNorm → ReLU."""

    def __init__(self, in_ch: int, out_ch: int, dirate: int = 1) -> None:
        super().__init__()
        self.conv_s1 = nn.Conv2d(in_ch, out_ch, 3, padding=dirate, dilation=dirate)
        self.bn_s1 = nn.BatchNorm2d(out_ch)
        self.relu_s1 = nn.ReLU(inplace=True)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu_s1(self.bn_s1(self.conv_s1(x)))


class RSU(nn.Module):
    """Residual U-block of height ``height`` (RSU-7 … RSU-4).

    Encoder levels 1…height-1 are separated by 2×2 max-pooling; the bottom
    level is a dilation-2 convolution. Attribute names (``rebnconvin``,
    ``rebnconv1`` … ``rebnconv{height}``, ``rebnconv{height-1}d`` …
    ``rebnconv1d``) and their registration order follow the official code.
    """

    def __init__(self, height: int, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.height = height
        self.rebnconvin = REBNCONV(in_ch, out_ch)
        self.rebnconv1 = REBNCONV(out_ch, mid_ch)
        for level in range(1, height - 1):
            setattr(self, f"pool{level}", nn.MaxPool2d(2, stride=2, ceil_mode=True))
            setattr(self, f"rebnconv{level + 1}", REBNCONV(mid_ch, mid_ch))
        setattr(self, f"rebnconv{height}", REBNCONV(mid_ch, mid_ch, dirate=2))
        for level in range(height - 1, 1, -1):
            setattr(self, f"rebnconv{level}d", REBNCONV(mid_ch * 2, mid_ch))
        self.rebnconv1d = REBNCONV(mid_ch * 2, out_ch)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hxin = self.rebnconvin(x)
        encoded = [self.rebnconv1(hxin)]
        for level in range(1, self.height - 1):
            pooled = getattr(self, f"pool{level}")(encoded[-1])
            encoded.append(getattr(self, f"rebnconv{level + 1}")(pooled))
        hx = getattr(self, f"rebnconv{self.height}")(encoded[-1])
        for level in range(self.height - 1, 0, -1):
            skip = encoded[level - 1]
            hx = getattr(self, f"rebnconv{level}d")(torch.cat((hx, skip), 1))
            if level > 1:
                hx = _upsample_like(hx, encoded[level - 2])
        return hx + hxin


class RSU4F(nn.Module):
    """RSU-4F: the dilated variant with no pooling, for low-resolution stages."""

    def __init__(self, in_ch: int, mid_ch: int, out_ch: int) -> None:
        super().__init__()
        self.rebnconvin = REBNCONV(in_ch, out_ch)
        self.rebnconv1 = REBNCONV(out_ch, mid_ch, dirate=1)
        self.rebnconv2 = REBNCONV(mid_ch, mid_ch, dirate=2)
        self.rebnconv3 = REBNCONV(mid_ch, mid_ch, dirate=4)
        self.rebnconv4 = REBNCONV(mid_ch, mid_ch, dirate=8)
        self.rebnconv3d = REBNCONV(mid_ch * 2, mid_ch, dirate=4)
        self.rebnconv2d = REBNCONV(mid_ch * 2, mid_ch, dirate=2)
        self.rebnconv1d = REBNCONV(mid_ch * 2, out_ch, dirate=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        hxin = self.rebnconvin(x)
        hx1 = self.rebnconv1(hxin)
        hx2 = self.rebnconv2(hx1)
        hx3 = self.rebnconv3(hx2)
        hx4 = self.rebnconv4(hx3)
        hx3d = self.rebnconv3d(torch.cat((hx4, hx3), 1))
        hx2d = self.rebnconv2d(torch.cat((hx3d, hx2), 1))
        hx1d = self.rebnconv1d(torch.cat((hx2d, hx1), 1))
        return hx1d + hxin


class _U2NetBase(nn.Module):
    """Six-stage encoder, five-stage decoder, six side outputs fused by a 1×1 conv.

    ``forward`` returns the fused probability map d0 only (what inference
    needs); ``forward_all`` returns d0 … d6 like the authors' code.
    """

    # (height or "F", in, mid, out) for stage1…stage6, then stage5d…stage1d.
    encoder: tuple[tuple, ...] = ()
    decoder: tuple[tuple, ...] = ()
    side_channels: tuple[int, ...] = ()

    def __init__(self, in_ch: int = 3, out_ch: int = 1) -> None:
        super().__init__()
        for index, spec in enumerate(self.encoder, start=1):
            setattr(self, f"stage{index}", self._block(spec, in_ch if index == 1 else None))
            if index < 6:
                setattr(self, f"pool{index}{index + 1}", nn.MaxPool2d(2, stride=2, ceil_mode=True))
        for index, spec in zip(range(5, 0, -1), self.decoder, strict=True):
            setattr(self, f"stage{index}d", self._block(spec))
        for index, channels in enumerate(self.side_channels, start=1):
            setattr(self, f"side{index}", nn.Conv2d(channels, out_ch, 3, padding=1))
        self.outconv = nn.Conv2d(6 * out_ch, out_ch, 1)

    @staticmethod
    def _block(spec: tuple, in_ch: int | None = None) -> nn.Module:
        height, spec_in, mid_ch, out_ch = spec
        in_ch = spec_in if in_ch is None else in_ch
        if height == "F":
            return RSU4F(in_ch, mid_ch, out_ch)
        return RSU(height, in_ch, mid_ch, out_ch)

    def _side_logits(self, x: torch.Tensor) -> list[torch.Tensor]:
        encoded = []
        hx = x
        for index in range(1, 7):
            hx = getattr(self, f"stage{index}")(hx)
            encoded.append(hx)
            if index < 6:
                hx = getattr(self, f"pool{index}{index + 1}")(hx)
        decoded = {6: encoded[5]}
        hx = encoded[5]
        for index in range(5, 0, -1):
            skip = encoded[index - 1]
            hx = getattr(self, f"stage{index}d")(torch.cat((_upsample_like(hx, skip), skip), 1))
            decoded[index] = hx
        d1 = self.side1(decoded[1])
        sides = [d1]
        for index in range(2, 7):
            sides.append(_upsample_like(getattr(self, f"side{index}")(decoded[index]), d1))
        return sides

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.sigmoid(self.outconv(torch.cat(self._side_logits(x), 1)))

    def forward_all(self, x: torch.Tensor) -> tuple[torch.Tensor, ...]:
        sides = self._side_logits(x)
        d0 = self.outconv(torch.cat(sides, 1))
        return tuple(torch.sigmoid(d) for d in (d0, *sides))


class U2NET(_U2NetBase):
    """The full 44M-parameter U²-Net (176 MB of fp32 weights)."""

    encoder = (
        (7, 3, 32, 64),
        (6, 64, 32, 128),
        (5, 128, 64, 256),
        (4, 256, 128, 512),
        ("F", 512, 256, 512),
        ("F", 512, 256, 512),
    )
    decoder = (
        ("F", 1024, 256, 512),
        (4, 1024, 128, 256),
        (5, 512, 64, 128),
        (6, 256, 32, 64),
        (7, 128, 16, 64),
    )
    side_channels = (64, 64, 128, 256, 512, 512)


class U2NETP(_U2NetBase):
    """U²-NetP, the 1.13M-parameter lite model."""

    encoder = (
        (7, 3, 16, 64),
        (6, 64, 16, 64),
        (5, 64, 16, 64),
        (4, 64, 16, 64),
        ("F", 64, 16, 64),
        ("F", 64, 16, 64),
    )
    decoder = (
        ("F", 128, 16, 64),
        (4, 128, 16, 64),
        (5, 128, 16, 64),
        (6, 128, 16, 64),
        (7, 128, 16, 64),
    )
    side_channels = (64, 64, 64, 64, 64, 64)


ARCHITECTURES: dict[str, type[_U2NetBase]] = {"u2net": U2NET, "u2netp": U2NETP}
