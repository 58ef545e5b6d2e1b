"""A tiny frozen backbone for the dense-probe tests (stand-in with the FrozenBackbone interface)."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class TinyBackbone(nn.Module):
    """Patch-embed conv + pointwise blocks; `features` returns maps [B,D,h,w] and CLS (mean) per layer."""

    def __init__(self, in_chans: int = 3, dim: int = 32, patch: int = 8, depth: int = 4, seed: int = 0):
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.patch_size, self.embed_dim, self.n_blocks, self.in_chans = patch, dim, depth, in_chans
        self.spec = f"tiny?bands={in_chans}"
        self.embed = nn.Conv2d(in_chans, dim, patch, patch)
        self.blocks = nn.ModuleList(nn.Conv2d(dim, dim, 1) for _ in range(depth))
        for p in self.parameters():
            p.data = torch.randn(p.shape, generator=g) * 0.2
        self.eval().requires_grad_(False)

    def normalize(self, x: Tensor) -> Tensor:
        return (x - 0.5) / 0.25

    def features(self, x: Tensor, layers="last", norm: bool = True):
        if layers == "last":
            idx = [self.n_blocks - 1]
        elif layers in ("four_last", "four_even"):
            idx = list(range(self.n_blocks))[-4:]
        else:
            idx = list(layers)
        h = self.embed(x)
        maps, cls = [], []
        for i, blk in enumerate(self.blocks):
            h = h + torch.tanh(blk(h))
            if i in idx:
                maps.append(h)
                cls.append(h.mean((2, 3)))
        return maps, cls
