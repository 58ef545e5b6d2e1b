"""The official norm-layer names: `layernorm` (eps 1e-6), `layernormbf16` (eps 1e-5, the released models), `rmsnorm`."""

from __future__ import annotations

import torch
from torch import Tensor, nn


class RMSNorm(nn.Module):
    """Root-mean-square norm with a learned scale (the official `rmsnorm` option; parameter `weight`)."""

    def __init__(self, dim: int, eps: float = 1e-5) -> None:
        super().__init__()
        self.eps = eps
        self.weight = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.ones_(self.weight)

    def forward(self, x: Tensor) -> Tensor:
        # Computed in float32 for stability, cast back to the input dtype (as official).
        out = x.float() * torch.rsqrt(x.float().pow(2).mean(-1, keepdim=True) + self.eps)
        return (out * self.weight.float()).type_as(x)


NORM_LAYERS: dict[str, tuple[type[nn.LayerNorm] | type[RMSNorm], float]] = {
    "layernorm": (nn.LayerNorm, 1e-6),
    "layernormbf16": (nn.LayerNorm, 1e-5),
    "rmsnorm": (RMSNorm, 1e-5),
}


def make_norm(name: str, dim: int) -> nn.LayerNorm | RMSNorm:
    """A norm layer by its official name."""
    cls, eps = NORM_LAYERS[name]
    return cls(dim, eps=eps)
