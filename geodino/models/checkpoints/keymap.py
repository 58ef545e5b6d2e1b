"""What the HF and timm converters share (both directions): key renaming, block counting and the official masked
key bias of the fused qkv projection."""

from __future__ import annotations

import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import Tensor

from geodino.errors import CheckpointError
from geodino.models.caller import user_stacklevel

__all__ = [
    "KEEP_OFFICIAL",
    "LOCAL_NORM_KEY",
    "check_portable",
    "check_rope_portable",
    "count_blocks",
    "drop_unit_scales",
    "invert",
    "key_bias_mask",
    "masked_qkv_bias",
    "refuse_untied_cls_norm",
    "rename",
    "warn_local_norm_dropped",
]

# HF config.json / timm metadata key saying that the official model has `local_cls_norm`
# (untie_global_and_local_cls_norm), which neither layout stores: `geodino convert` back to the official layout
# re-creates it from `norm`
LOCAL_NORM_KEY = "geodino_local_cls_norm"

# what a bf16 RoPE (pos_embed_rope_dtype: bf16, as configs/pretrain/vitl16.yaml trains) changes in the tokens when
# HF / timm compute it in float32, measured with random weights (LayerScale 0.3): max abs token difference 2.1e-3 on
# a 2-block ViT-T, 1.5e-3 (2.5e-4 relative) on a ViT-L with vitl16.yaml's settings at 224 px, where a float32 RoPE
# gives 2e-6
ROPE_BF16_DIFF = "max abs ~1.5e-3, 2.5e-4 relative, on a ViT-L at 224 px"
# the way out every "cannot express" refusal of the converters offers
KEEP_OFFICIAL = "keep the official layout (.pth / .safetensors), which keeps it"


def refuse_untied_cls_norm(state: Mapping[str, Tensor], target: str) -> None:
    """Refuse a backbone with an untied `cls_norm`, which `target` (HF DINOv3ViTModel, timm Eva) has no place for."""
    if "cls_norm.weight" in state:
        raise CheckpointError(f"this backbone has an untied cls_norm, which {target} cannot express; {KEEP_OFFICIAL}")


def check_portable(config: Mapping[str, Any], target: str, rope_key: str) -> None:
    """Refuse what `target` (HF DINOv3ViTModel, timm's DINOv3 Eva) cannot express of a backbone config: RMSNorm (it
    has LayerNorm only), a min/max-period RoPE (it takes one base, its `rope_key`) and `check_rope_portable`'s."""
    if config.get("norm_layer") == "rmsnorm":
        raise CheckpointError(f"an RMSNorm backbone cannot be expressed in {target} (LayerNorm only); {KEEP_OFFICIAL}")
    if config.get("pos_embed_rope_base") is None:
        raise CheckpointError(
            f"a min/max-period RoPE cannot be expressed in {target} ({rope_key} only); {KEEP_OFFICIAL}"
        )
    check_rope_portable(config, target)


def check_rope_portable(config: Mapping[str, Any], target: str) -> None:
    """Refuse the RoPE settings `target` (HF DINOv3ViTModel, timm's DINOv3 Eva) cannot express, and warn for a RoPE
    dtype it computes differently: both left no trace in the converted file (tokens differed by 0.2 / 2e-3)."""
    norm = config.get("pos_embed_rope_normalize_coords") or "separate"
    if norm != "separate":
        raise CheckpointError(
            f"this backbone normalises its RoPE coordinates by the {norm} side (pos_embed_rope_normalize_coords: "
            f"{norm}), which {target} cannot express (it divides each axis by its own size, 'separate'; the tokens "
            f"would differ by ~0.2); {KEEP_OFFICIAL}"
        )
    dtype = config.get("pos_embed_rope_dtype") or "fp32"
    if dtype != "fp32":
        warnings.warn(
            f"this backbone computes its RoPE in {dtype} (pos_embed_rope_dtype: {dtype}) and {target} in float32: "
            f"the converted model's tokens differ from geodino's ({ROPE_BF16_DIFF}); the official layout "
            "(.pth / .safetensors) keeps it exactly",
            stacklevel=user_stacklevel(),
        )


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


def warn_local_norm_dropped(state: Mapping[str, Tensor], target: str) -> bool:
    """Warn (one line) that `local_cls_norm` is not written to `target`, which has no such norm; True when the
    state has one (the writer then records LOCAL_NORM_KEY so that converting back can re-create it)."""
    if "local_cls_norm.weight" not in state:
        return False
    warnings.warn(
        f"local_cls_norm (the CLS norm of local crops, used only in training) is dropped: {target} has none; the "
        "output records that the model has one, and `geodino convert` back to the official layout re-creates it as "
        "a copy of norm (exact for inference, not the trained values)",
        stacklevel=user_stacklevel(),
    )
    return True


def drop_unit_scales(out: dict[str, Tensor], depth: int) -> bool:
    """Remove the LayerScale gammas when every one of every block is exactly 1: what `official_to_timm` and
    `official_to_hf` write for a backbone without LayerScale (the same output), so that its round trip gives back
    the official key list. True when they were removed."""
    gammas = [f"blocks.{i}.ls{j}.gamma" for i in range(depth) for j in (1, 2)]
    if not all(k in out and not out[k].is_meta for k in gammas):
        return False
    if not all(bool((out[k] == 1).all()) for k in gammas):
        return False
    for k in gammas:
        del out[k]
    return True
