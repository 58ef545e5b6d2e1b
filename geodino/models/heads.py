"""Projection heads of the DINOv3 recipe: MLP -> L2 normalisation -> bias-free prototype layer.

The same class serves the DINO (CLS) head and the separate iBOT (patch) head, as in the official code. State-dict
keys match the official `dinov3/layers/dino_head.py` (`mlp.0`, `mlp.2`, `mlp.4`, `last_layer.weight`) so teacher
dumps containing `dino_head.*` / `ibot_head.*` load unchanged. Unlike DINOv2 there is no weight normalisation on
the prototype layer.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["DINOHead", "build_mlp"]


def build_mlp(nlayers: int, in_dim: int, bottleneck_dim: int, hidden_dim: int, bias: bool = True) -> nn.Module:
    """Linear -> GELU -> ... -> Linear(bottleneck); a single Linear when `nlayers == 1`."""
    nlayers = max(int(nlayers), 1)
    if nlayers == 1:
        return nn.Linear(in_dim, bottleneck_dim, bias=bias)
    layers: list[nn.Module] = [nn.Linear(in_dim, hidden_dim, bias=bias), nn.GELU()]
    for _ in range(nlayers - 2):
        layers += [nn.Linear(hidden_dim, hidden_dim, bias=bias), nn.GELU()]
    layers.append(nn.Linear(hidden_dim, bottleneck_dim, bias=bias))
    return nn.Sequential(*layers)


class DINOHead(nn.Module):
    """Projection head: `mlp` (nlayers, GELU), L2-normalise to the unit sphere, then `last_layer` prototypes.

    `forward(x, no_last_layer=True)` returns the normalised bottleneck features (used when the prototype layer
    runs elsewhere, e.g. per distillation subgroup); `only_last_layer=True` applies only the prototypes.
    """

    def __init__(
        self,
        in_dim: int,
        out_dim: int,
        hidden_dim: int = 2048,
        bottleneck_dim: int = 256,
        nlayers: int = 3,
        mlp_bias: bool = True,
    ) -> None:
        super().__init__()
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        self.hidden_dim, self.bottleneck_dim, self.nlayers = int(hidden_dim), int(bottleneck_dim), int(nlayers)
        self.mlp = build_mlp(nlayers, in_dim, bottleneck_dim, hidden_dim, bias=mlp_bias)
        self.last_layer = nn.Linear(bottleneck_dim, out_dim, bias=False)
        self.init_weights()

    def init_weights(self) -> None:
        """Official init: truncated normal (std 0.02) Linear weights, zero biases."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)

    def forward(self, x: Tensor, no_last_layer: bool = False, only_last_layer: bool = False) -> Tensor:
        if not only_last_layer:
            x = self.mlp(x)
            eps = 1e-6 if x.dtype == torch.float16 else 1e-12
            x = F.normalize(x, dim=-1, p=2, eps=eps)
        if not no_last_layer:
            x = self.last_layer(x)
        return x

    def extra_repr(self) -> str:
        return f"in_dim={self.in_dim}, hidden={self.hidden_dim}, bottleneck={self.bottleneck_dim}, K={self.out_dim}"
