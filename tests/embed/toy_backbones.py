"""Toy backbones for the feature-raster tests (importable by spawned worker processes)."""

from __future__ import annotations

from typing import Any

import torch
from torch import nn


class ConvBackbone(nn.Module):
    """A translation-equivariant "backbone": patchify conv (stride p) then 3x3 convs on the patch grid.

    Its receptive field is `1 + 2 * n_convs` cells, so away from a tile's border its features equal those of
    whole-image inference: the seam test compares the two.
    """

    def __init__(self, in_chans: int = 3, dim: int = 8, patch: int = 4, n_convs: int = 2, seed: int = 0) -> None:
        super().__init__()
        g = torch.Generator().manual_seed(seed)
        self.patch_size, self.embed_dim, self.in_chans, self.n_blocks = patch, dim, in_chans, n_convs
        self.spec, self.fingerprint = f"toy:conv{dim}p{patch}", "toyconv"
        self.embed = nn.Conv2d(in_chans, dim, patch, stride=patch)
        self.convs = nn.ModuleList(nn.Conv2d(dim, dim, 3, padding=1) for _ in range(n_convs))
        with torch.no_grad():
            for p in self.parameters():
                p.copy_(torch.randn(p.shape, generator=g) * 0.3)
        self.eval()

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return (x - 0.5) / 0.25

    def features(self, x: torch.Tensor, layers: Any = "last", norm: bool = True) -> tuple[list, list]:
        h = self.embed(x)
        outs = []
        for c in self.convs:
            h = torch.tanh(c(h)) + h
            outs.append(h)
        if layers == "last":
            take = [len(outs) - 1]
        elif layers == "four_last":
            take = list(range(len(outs)))
        else:
            take = list(layers)
        maps = [outs[i] for i in take]
        return maps, [m.mean((2, 3)) for m in maps]


class ConstantBackbone(nn.Module):
    """Returns the same vector at every patch: blending must give exactly that vector everywhere."""

    def __init__(self, in_chans: int = 3, dim: int = 4, patch: int = 8) -> None:
        super().__init__()
        self.patch_size, self.embed_dim, self.in_chans, self.n_blocks = patch, dim, in_chans, 1
        self.spec, self.fingerprint = "toy:constant", "const"
        self.register_buffer("value", torch.arange(1, dim + 1, dtype=torch.float32) * 0.25 - 0.3)

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def features(self, x: torch.Tensor, layers: Any = "last", norm: bool = True) -> tuple[list, list]:
        b, _, h, w = x.shape
        p = self.patch_size
        m = self.value[None, :, None, None].expand(b, -1, h // p, w // p).contiguous()
        return [m], [m.mean((2, 3))]


class CrashingBackbone(ConvBackbone):
    """Raises a plain RuntimeError (a bug, not a refusal of the input) on every tile larger than the 2 x 2 patches of
    the set-up's probe: a worker process that crashes."""

    def features(self, x: torch.Tensor, layers: Any = "last", norm: bool = True) -> tuple[list, list]:
        if x.shape[-1] > 2 * self.patch_size:
            raise RuntimeError("simulated crash in the backbone")
        return super().features(x, layers, norm)


class StallingBackbone(ConvBackbone):
    """Sleeps `seconds` on every tile (larger than the set-up's probe) whose values all lie below `below`: a worker
    whose share of a raster takes long, so that a test can tell whether it was stopped or left to finish."""

    seconds, below = 600.0, 10.0

    def features(self, x: torch.Tensor, layers: Any = "last", norm: bool = True) -> tuple[list, list]:
        if x.shape[-1] > 2 * self.patch_size and float(x.max()) < self.below:
            import time

            time.sleep(self.seconds)
        return super().features(x, layers, norm)
