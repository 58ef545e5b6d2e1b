"""Feed-forward layers: the MLP (`fc1`, `fc2`, GELU) and SwiGLU (`w1`, `w2`, `w3`) with official hidden sizes."""

from __future__ import annotations

import torch.nn.functional as F
from torch import Tensor, nn


def swiglu_hidden_dim(hidden_features: int, align_to: int = 8) -> int:
    """Official SwiGLU width: int(hidden · 2/3) rounded up to a multiple of `align_to`."""
    d = int(hidden_features * 2 / 3)
    return d + (-d % align_to)


class Mlp(nn.Module):
    """Linear -> GELU (exact) -> Linear."""

    def __init__(self, in_features: int, hidden_features: int, bias: bool = True) -> None:
        super().__init__()
        self.fc1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.act = nn.GELU()
        self.fc2 = nn.Linear(hidden_features, in_features, bias=bias)

    @property
    def hidden_features(self) -> int:
        return self.fc1.out_features

    def forward(self, x: Tensor) -> Tensor:
        return self.fc2(self.act(self.fc1(x)))


class SwiGLUFFN(nn.Module):
    """`w3(silu(w1 x) · w2 x)`; `hidden_features` here is the final (already aligned) width."""

    def __init__(self, in_features: int, hidden_features: int, bias: bool = True) -> None:
        super().__init__()
        self.w1 = nn.Linear(in_features, hidden_features, bias=bias)
        self.w2 = nn.Linear(in_features, hidden_features, bias=bias)
        self.w3 = nn.Linear(hidden_features, in_features, bias=bias)

    @property
    def hidden_features(self) -> int:
        return self.w1.out_features

    def forward(self, x: Tensor) -> Tensor:
        return self.w3(F.silu(self.w1(x)) * self.w2(x))


# name -> (class, SwiGLU alignment or None for the MLP)
FFN_LAYERS: dict[str, tuple[type[Mlp] | type[SwiGLUFFN], int | None]] = {
    "mlp": (Mlp, None),
    "swiglu": (SwiGLUFFN, 8),
    "swiglu32": (SwiGLUFFN, 32),
    "swiglu64": (SwiGLUFFN, 64),
    "swiglu128": (SwiGLUFFN, 128),
}


def ffn_hidden_dim(ffn_layer: str, dim: int, ffn_ratio: float) -> int:
    """Hidden width the official code derives from (ffn_layer, dim, ratio)."""
    _, align = FFN_LAYERS[ffn_layer]
    hidden = int(dim * ffn_ratio)
    return hidden if align is None else swiglu_hidden_dim(hidden, align)
