"""Pre-norm transformer block over a list of crop groups, with LayerScale and batch-subset drop path.

Tokens of all groups are concatenated for the norms, the qkv and output projections and the FFN (one large
matmul instead of one per group) while attention runs per group, as in the official `_forward_list`.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn

from geodino.models.layers.attention import SelfAttention
from geodino.models.layers.ffn import FFN_LAYERS
from geodino.models.layers.norm import make_norm

Rope = tuple[Tensor, Tensor] | None


class LayerScale(nn.Module):
    """Per-channel residual scale (official key `gamma`), initialised to `init_values` (1e-5 for DINOv3)."""

    def __init__(self, dim: int, init_values: float = 1e-5) -> None:
        super().__init__()
        self.init_values = init_values
        self.gamma = nn.Parameter(torch.empty(dim))
        self.reset_parameters()

    def reset_parameters(self) -> None:
        if self.gamma.device.type != "meta":
            nn.init.constant_(self.gamma, self.init_values)

    def forward(self, x: Tensor) -> Tensor:
        return x * self.gamma


def _residual(x: Tensor, y: Tensor, ls: nn.Module) -> Tensor:
    """x + ls(y), fused into one kernel when ls is a LayerScale."""
    if isinstance(ls, LayerScale):
        return torch.addcmul(x, y, ls.gamma)
    return x + ls(y)


def _flat(xs: list[Tensor]) -> Tensor:
    """Tokens of all groups as one [T, D] tensor (a view when there is a single group)."""
    if len(xs) == 1:
        return xs[0].reshape(-1, xs[0].shape[-1])
    return torch.cat([x.reshape(-1, x.shape[-1]) for x in xs])


class SelfAttentionBlock(nn.Module):
    """`x + ls1(attn(norm1 x))`, then `+ ls2(mlp(norm2 x))` (official keys norm1, attn, ls1, norm2, mlp, ls2)."""

    def __init__(
        self,
        dim: int,
        num_heads: int,
        *,
        ffn_layer: str = "mlp",
        ffn_hidden_dim: int,
        qkv_bias: bool = True,
        proj_bias: bool = True,
        ffn_bias: bool = True,
        drop_path: float = 0.0,
        norm_layer: str = "layernorm",
        init_values: float | None = 1e-5,
        mask_k_bias: bool = False,
    ) -> None:
        super().__init__()
        self.norm1 = make_norm(norm_layer, dim)
        self.attn = SelfAttention(dim, num_heads, qkv_bias=qkv_bias, proj_bias=proj_bias, mask_k_bias=mask_k_bias)
        self.ls1: nn.Module = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.norm2 = make_norm(norm_layer, dim)
        ffn_cls, _ = FFN_LAYERS[ffn_layer]
        self.mlp = ffn_cls(dim, ffn_hidden_dim, bias=ffn_bias)
        self.ls2: nn.Module = LayerScale(dim, init_values) if init_values else nn.Identity()
        self.sample_drop_ratio = drop_path

    # run a list of crop groups as one concatenated token matrix (True), one group at a time (False), or
    # concatenated except on CPU (None); the results are the same up to float summation order
    concat_groups: bool | None = None

    def forward(self, x: Tensor | list[Tensor], rope: Rope | list[Rope] = None) -> Tensor | list[Tensor]:
        """One tensor with one rope, or a list of crop groups with one rope each (a list) or one shared rope."""
        if isinstance(x, Tensor):
            if isinstance(rope, list):
                raise ValueError("one input tensor takes one rope (sin, cos) or None, not a list of ropes")
            return self.forward_list([x], [rope])[0]
        if not isinstance(rope, list):
            # a (sin, cos) pair is one rope for every group, not two per-group entries
            return self.forward_list(x, [rope] * len(x))
        if len(rope) != len(x):
            raise ValueError(f"{len(x)} crop groups but {len(rope)} ropes: give one rope per group or one for all")
        return self.forward_list(x, rope)

    def forward_list(self, xs: list[Tensor], ropes: Sequence[Rope]) -> list[Tensor]:
        concat = self.concat_groups if self.concat_groups is not None else xs[0].device.type != "cpu"
        if len(xs) > 1 and not concat:
            # CPU: one pass per crop group. Concatenating the groups' tokens (the official path, fewer and larger
            # GPU kernels) gains nothing on CPU, and its larger activations (> 32 MB at batch 8) are served by
            # fresh mmaps that page-fault on every step: the SSL step measured ~7 % slower (benchmarks/train_step.py).
            # the class's method, not `self.forward_list`: a wrapper set on the instance (activation checkpointing,
            # compile) already covers this call, and going through it again would nest it per group
            own = type(self).forward_list
            return [own(self, [x], [r])[0] for x, r in zip(xs, ropes)]
        if self.training and self.sample_drop_ratio > 0.0:
            return self._forward_list_drop_path(xs, ropes)
        shapes = [x.shape for x in xs]
        sizes = [s[0] * s[1] for s in shapes]
        flat = _flat(xs)
        qkv = self.attn.qkv(self.norm1(flat)).split(sizes)
        att = [self.attn.compute_attention(t.view(s[0], s[1], -1), r) for t, s, r in zip(qkv, shapes, ropes)]
        flat = _residual(flat, self.attn.proj(_flat(att)), self.ls1)
        flat = _residual(flat, self.mlp(self.norm2(flat)), self.ls2)
        if len(xs) == 1:
            return [flat.view(shapes[0])]
        return [t.view(s) for t, s in zip(flat.split(sizes), shapes)]

    def _forward_list_drop_path(self, xs: list[Tensor], ropes: Sequence[Rope]) -> list[Tensor]:
        """Official stochastic depth: each residual branch runs on a random (1 − p) subset of each group's samples
        and is added back with `index_add`, scaled by b / subset."""
        bs = [x.shape[0] for x in xs]
        subsets = [max(int(b * (1 - self.sample_drop_ratio)), 1) for b in bs]
        scales = [b / s for b, s in zip(bs, subsets)]

        idx1 = [torch.randperm(b, device=x.device)[:s] for x, b, s in zip(xs, bs, subsets)]
        sub1 = [x[i] for x, i in zip(xs, idx1)]
        shapes = [x.shape for x in sub1]
        sizes = [s[0] * s[1] for s in shapes]
        qkv = self.attn.qkv(self.norm1(_flat(sub1))).split(sizes)
        att = [self.attn.compute_attention(t.view(s[0], s[1], -1), r) for t, s, r in zip(qkv, shapes, ropes)]
        res1 = [t.view(s) for t, s in zip(self.attn.proj(_flat(att)).split(sizes), shapes)]
        xs = [torch.index_add(x, 0, i, self.ls1(r), alpha=a) for x, i, r, a in zip(xs, idx1, res1, scales)]

        idx2 = [torch.randperm(b, device=x.device)[:s] for x, b, s in zip(xs, bs, subsets)]
        sub2 = [x[i] for x, i in zip(xs, idx2)]
        shapes = [x.shape for x in sub2]
        sizes = [s[0] * s[1] for s in shapes]
        res2 = [t.view(s) for t, s in zip(self.mlp(self.norm2(_flat(sub2))).split(sizes), shapes)]
        return [torch.index_add(x, 0, i, self.ls2(r), alpha=a) for x, i, r, a in zip(xs, idx2, res2, scales)]
