"""The official DINOv3 linear segmentation head: dropout, BatchNorm and a 1x1 conv on patch tokens."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor, nn


class LinearHead(nn.Module):
    """Dropout(0.1) + BatchNorm + 1x1 conv on the channel-concatenation of the chosen layers' patch maps.

    As `dinov3/eval/segmentation/models/heads/linear_head.py`: maps of several layers are resized to the first
    one's size and concatenated; the output is at patch resolution (the caller upsamples to the image).
    """

    def __init__(self, in_dims: list[int], num_classes: int, dropout: float = 0.1):
        super().__init__()
        self.in_dims = list(in_dims)
        total = sum(in_dims)
        self.dropout = nn.Dropout2d(dropout) if dropout > 0 else nn.Identity()
        self.bn = nn.BatchNorm2d(total)
        self.conv = nn.Conv2d(total, num_classes, kernel_size=1)
        nn.init.normal_(self.conv.weight, mean=0.0, std=0.01)
        assert self.conv.bias is not None  # built with a bias
        nn.init.zeros_(self.conv.bias)

    def forward(self, feats: list[Tensor], cls_tokens: list[Tensor] | None = None) -> Tensor:
        size = feats[0].shape[-2:]
        maps = [f if f.shape[-2:] == size else F.interpolate(f, size=size, mode="bilinear") for f in feats]
        x = torch.cat(maps, dim=1)
        return self.conv(self.bn(self.dropout(x)))
