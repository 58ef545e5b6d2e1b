"""What the HF and timm converters share (both directions): key renaming, block counting and the official masked
key bias of the fused qkv projection."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import Tensor

__all__ = ["count_blocks", "invert", "key_bias_mask", "masked_qkv_bias", "rename"]


def rename(
    out: dict[str, Tensor],
    state: Mapping[str, Tensor],
    src_prefix: str,
    dst_prefix: str,
    names: Mapping[str, str],
    params: Sequence[str] = ("weight", "bias"),
) -> None:
    """`out[dst_prefix + new + "." + p] = state[src_prefix + old + "." + p]` for every `old -> new` of `names` and
    every parameter `p` the state has (`p = ""`: the key itself, e.g. LayerScale's `gamma`)."""
    for old, new in names.items():
        for p in params:
            tail = f".{p}" if p else ""
            key = f"{src_prefix}{old}{tail}"
            if key in state:
                out[f"{dst_prefix}{new}{tail}"] = state[key]


def invert(names: Mapping[str, str]) -> dict[str, str]:
    """The reverse mapping (for the other direction of a converter)."""
    return {v: k for k, v in names.items()}


def count_blocks(state: Mapping[str, Tensor], prefix: str = "blocks.") -> int:
    """Number of transformer blocks `prefix{i}.norm1.weight`, i = 0, 1, ..."""
    n = 0
    while f"{prefix}{n}.norm1.weight" in state:
        n += 1
    return n


def key_bias_mask(dim: int, dtype: torch.dtype) -> Tensor:
    """The official `attn.qkv.bias_mask` buffer for width `dim`: 1 on the q and v thirds, 0 on the k third."""
    mask = torch.ones(3 * dim, dtype=dtype)
    mask[dim : 2 * dim] = 0
    return mask


def masked_qkv_bias(state: Mapping[str, Tensor], prefix: str) -> Tensor | None:
    """The effective qkv bias `prefix + "attn.qkv.bias"` (its `bias_mask` applied when the state has one), or None."""
    bias = state.get(f"{prefix}attn.qkv.bias")
    if bias is not None and f"{prefix}attn.qkv.bias_mask" in state:
        bias = bias * state[f"{prefix}attn.qkv.bias_mask"].to(bias.dtype)
    return bias
