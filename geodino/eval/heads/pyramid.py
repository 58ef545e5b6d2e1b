"""ViTDet simple feature pyramid (Li et al. 2022): one stride-p ViT map -> strides p/4 ... 2p (+ p6).

The detector sees a plain multi-scale backbone (an `out_channels` attribute and an ordered dict of maps), so
any torchvision detection head (Faster R-CNN, RetinaNet, FCOS) runs on a frozen ViT. Several layers can be
fed: their maps are concatenated on channels first.
"""

from __future__ import annotations

from collections import OrderedDict

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LayerNorm2d(nn.Module):
    """LayerNorm over the channels of a [B,C,H,W] map (ViTDet's norm in the pyramid)."""

    def __init__(self, ch: int, eps: float = 1e-6):
        super().__init__()
        self.weight = nn.Parameter(torch.ones(ch))
        self.bias = nn.Parameter(torch.zeros(ch))
        self.eps = eps

    def forward(self, x: Tensor) -> Tensor:
        x = F.layer_norm(x.permute(0, 2, 3, 1), x.shape[1:2], self.weight, self.bias, self.eps)
        return x.permute(0, 3, 1, 2)


class HalfMaxPool(nn.Module):
    """The x0.5 pyramid level: 2x2 max-pool, stride 2 (floor, as `nn.MaxPool2d(2, 2)` in ViTDet and PANGAEA).

    A map one token high or wide (an image or window no bigger than a patch in that direction, or crop_size equal
    to the patch size) keeps that size 1 instead of failing with "Output size is too small".
    """

    def forward(self, x: Tensor) -> Tensor:
        ph, pw = max(0, 2 - x.shape[-2]), max(0, 2 - x.shape[-1])
        if ph or pw:
            x = F.pad(x, (0, pw, 0, ph), mode="replicate")
        return F.max_pool2d(x, 2, 2)


class SimpleFeaturePyramid(nn.Module):
    """Maps [B,D,h,w] (one or several layers) -> OrderedDict p2..p5 (+ `pool` = p6) of `out_channels` each.

    Scales (4, 2, 1, 0.5) relative to the patch grid, as ViTDet: transposed convs up, max-pool down, then
    1x1 conv + LN and 3x3 conv + LN per level.
    """

    def __init__(
        self,
        in_dim: int,
        n_layers: int = 1,
        out_channels: int = 256,
        scales: tuple[float, ...] = (4, 2, 1, 0.5),
        top_pool: bool = True,
    ):
        super().__init__()
        dim = in_dim * n_layers
        self.out_channels = out_channels
        self.scales = tuple(scales)
        self.top_pool = top_pool
        stages = []
        for s in scales:
            up: nn.Module
            if s == 4:
                up = nn.Sequential(
                    nn.ConvTranspose2d(dim, dim // 2, 2, 2),
                    LayerNorm2d(dim // 2),
                    nn.GELU(),
                    nn.ConvTranspose2d(dim // 2, dim // 4, 2, 2),
                )
                c = dim // 4
            elif s == 2:
                up, c = nn.ConvTranspose2d(dim, dim // 2, 2, 2), dim // 2
            elif s == 1:
                up, c = nn.Identity(), dim
            elif s == 0.5:
                up, c = HalfMaxPool(), dim
            else:
                raise ValueError(f"SimpleFeaturePyramid scale {s} not in (4, 2, 1, 0.5)")
            stages.append(
                nn.Sequential(
                    up,
                    nn.Conv2d(c, out_channels, 1, bias=False),
                    LayerNorm2d(out_channels),
                    nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False),
                    LayerNorm2d(out_channels),
                )
            )
        self.stages = nn.ModuleList(stages)
        self.names = [{4: "p2", 2: "p3", 1: "p4", 0.5: "p5"}[s] for s in scales]

    def forward(self, feats: list[Tensor]) -> OrderedDict[str, Tensor]:
        x = torch.cat(feats, dim=1) if len(feats) > 1 else feats[0]
        out: OrderedDict[str, Tensor] = OrderedDict()
        for name, stage in zip(self.names, self.stages):
            out[name] = stage(x)
        if self.top_pool:
            out["pool"] = F.max_pool2d(out[self.names[-1]], kernel_size=1, stride=2)
        return out
