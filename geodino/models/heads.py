"""Projection heads of the DINOv3 recipe: MLP -> L2 normalisation -> bias-free prototype layer.

The same class serves the DINO (CLS) head and the separate iBOT (patch) head, as in the official code. State-dict
keys match the official `dinov3/layers/dino_head.py` (`mlp.0`, `mlp.2`, `mlp.4`, `last_layer.weight`) so teacher
dumps containing `dino_head.*` / `ibot_head.*` load unchanged.

The prototype layer has three parametrisations (`last_layer=`):
- `linear` (DINOv3, the default): a plain bias-free Linear initialised at std 0.02. On the unit-norm bottleneck
  its logits start at std ~0.02, so at a small budget the teacher's Sinkhorn-Knopp targets are nearly uniform and
  the student can follow them by shrinking its prototypes (see docs/recipe.md, "Why short runs sit at ln K").
- `weight_norm` (DINOv2): `weight = g * v / |v|` with `g` initialised to 1 and trained (keys `last_layer.weight_g`,
  `last_layer.weight_v`, as DINOv2's `torch.nn.utils.weight_norm`).
- `normalized` (DINO v1 `norm_last_layer=True`): the same with `g` frozen at 1, so every prototype stays a unit
  vector and logits are cosines: the student cannot reach a uniform output by shrinking its weights.
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.nn import functional as F

__all__ = ["LAST_LAYERS", "DINOHead", "WeightNormLinear", "build_mlp"]

LAST_LAYERS = ("linear", "weight_norm", "normalized")


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


class WeightNormLinear(nn.Module):
    """Bias-free Linear with `weight = g * v / |v|` per output row (DINOv2's weight-normalised prototypes).

    Written out rather than `torch.nn.utils.parametrizations.weight_norm` so the state-dict keys stay DINOv2's
    (`weight_g` [K, 1], `weight_v` [K, D]) and the parameters stay plain tensors for FSDP2 and the foreach EMA.
    `train_g=False` freezes g at 1 (DINO v1 `norm_last_layer`).
    """

    def __init__(self, in_features: int, out_features: int, train_g: bool = True) -> None:
        super().__init__()
        self.in_features, self.out_features = int(in_features), int(out_features)
        self.weight_g = nn.Parameter(torch.ones(out_features, 1), requires_grad=train_g)
        self.weight_v = nn.Parameter(torch.empty(out_features, in_features))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        nn.init.trunc_normal_(self.weight_v, std=0.02)
        nn.init.ones_(self.weight_g)

    @property
    def weight(self) -> Tensor:
        """The effective prototype matrix [K, D]."""
        return self.weight_g * F.normalize(self.weight_v, dim=1)

    def forward(self, x: Tensor) -> Tensor:
        return F.linear(x, self.weight)

    def extra_repr(self) -> str:
        return f"in={self.in_features}, out={self.out_features}, train_g={self.weight_g.requires_grad}"


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
        last_layer: str = "linear",
    ) -> None:
        super().__init__()
        if last_layer not in LAST_LAYERS:
            raise ValueError(f"last_layer={last_layer!r} must be one of {', '.join(LAST_LAYERS)}")
        self.in_dim, self.out_dim = int(in_dim), int(out_dim)
        self.hidden_dim, self.bottleneck_dim, self.nlayers = int(hidden_dim), int(bottleneck_dim), int(nlayers)
        self.last_layer_kind = last_layer
        self.mlp = build_mlp(nlayers, in_dim, bottleneck_dim, hidden_dim, bias=mlp_bias)
        self.last_layer: nn.Module = (
            nn.Linear(bottleneck_dim, out_dim, bias=False)
            if last_layer == "linear"
            else WeightNormLinear(bottleneck_dim, out_dim, train_g=last_layer == "weight_norm")
        )
        self.init_weights()

    def init_weights(self) -> None:
        """Official init: truncated normal (std 0.02) Linear weights, zero biases; weight-normalised prototypes
        get v at std 0.02 and g = 1 (DINOv2)."""
        for m in self.modules():
            if isinstance(m, nn.Linear):
                nn.init.trunc_normal_(m.weight, std=0.02)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, WeightNormLinear):
                m.reset_parameters()

    def forward(self, x: Tensor, no_last_layer: bool = False, only_last_layer: bool = False) -> Tensor:
        if not only_last_layer:
            x = self.mlp(x)
            eps = 1e-6 if x.dtype == torch.float16 else 1e-12
            x = F.normalize(x, dim=-1, p=2, eps=eps)
        if not no_last_layer:
            x = self.last_layer(x)
        return x

    def extra_repr(self) -> str:
        return (
            f"in_dim={self.in_dim}, hidden={self.hidden_dim}, bottleneck={self.bottleneck_dim}, K={self.out_dim}, "
            f"last_layer={self.last_layer_kind}"
        )
