"""A stand-in for `geodino.backbones.FrozenBackbone` shared by the classification, feature and runner tests:
patch conv + residual token MLPs (CLS = token mean), seeded, with a call counter."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import torch
from torch import nn


class TinyBackbone(nn.Module):
    """The FrozenBackbone interface in a few lines; `spec` defaults to `tiny:{seed}` (the fingerprint hashes it)."""

    def __init__(
        self,
        in_chans: int = 3,
        dim: int = 8,
        patch: int = 8,
        blocks: int = 4,
        seed: int = 0,
        spec: str | None = None,
    ) -> None:
        super().__init__()
        torch.manual_seed(seed)
        self.embed = nn.Conv2d(in_chans, dim, patch, patch)
        self.blocks = nn.ModuleList(nn.Linear(dim, dim) for _ in range(blocks))
        self.patch_size, self.embed_dim, self.in_chans, self.n_blocks = patch, dim, in_chans, blocks
        self.spec = spec or f"tiny:{seed}"
        self.fingerprint = hashlib.sha256(self.spec.encode()).hexdigest()
        self.calls = 0
        self.eval().requires_grad_(False)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 0.5) / 0.25

    def features(self, x: torch.Tensor, layers: str | Sequence[int] = "last", norm: bool = True):
        """(maps [B, D, h, w], CLS [B, D]) of block `last`, the four last blocks (other names) or listed blocks."""
        self.calls += 1
        t = self.embed(x)
        b, d, h, w = t.shape
        t = t.flatten(2).transpose(1, 2)
        outs = []
        for blk in self.blocks:
            t = t + torch.tanh(blk(t))
            outs.append(t)
        if isinstance(layers, str):
            idx = [self.n_blocks - 1] if layers == "last" else list(range(self.n_blocks - 4, self.n_blocks))
        else:
            idx = list(layers)
        return [outs[i].transpose(1, 2).reshape(b, d, h, w) for i in idx], [outs[i].mean(1) for i in idx]
