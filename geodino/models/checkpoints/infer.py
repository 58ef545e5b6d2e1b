"""Architecture inference: the build kwargs of a backbone from the shapes of its official-layout state_dict.

Also the RoPE periods (which HF and timm files do not store) and the default head count for a width, which the
converters need to rebuild them.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import torch
from torch import Tensor

from geodino.errors import CheckpointError
from geodino.models.archs import ARCHS, COMMON, arch_kwargs
from geodino.models.layers.ffn import ffn_hidden_dim

__all__ = ["default_heads", "infer_config", "rope_periods"]


def default_heads(dim: int) -> int:
    """The head count of the table architecture of width `dim`, else 64-dim heads."""
    table = [a["num_heads"] for a in ARCHS.values() if a["embed_dim"] == dim]
    return table[0] if table else max(1, dim // 64)


def rope_periods(head_dim: int, base: float = 100.0) -> Tensor:
    """Official periods `base^(2j / (D_head/2))`, j < D_head/4, in float32."""
    return base ** (2 * torch.arange(head_dim // 4, dtype=torch.float32) / (head_dim // 2))


def infer_config(state: Mapping[str, Tensor], path: str | Path = "<state_dict>") -> dict[str, Any]:
    """Build kwargs of the DinoVisionTransformer that `state` (official layout) belongs to, from its shapes.

    Inferred: embed_dim, depth, heads (from `rope_embed.periods`, else the arch table or 64-dim heads), FFN type
    and hidden size, storage tokens, qkv/proj/FFN biases, masked k-bias, LayerScale, norm type, `cls_norm`,
    `local_cls_norm`, in_chans, patch size and the RoPE periods (base or min/max). Settings that leave no trace
    in the weights (RoPE train-time augmentation, drop path, LayerNorm eps) take the released values.
    """
    try:
        w = state["patch_embed.proj.weight"]
        dim = int(state["cls_token"].shape[-1])
    except KeyError as exc:
        raise CheckpointError(f"checkpoint {path} lacks {exc.args[0]}; it is not a DINOv3 ViT backbone") from exc
    depth = 0
    while f"blocks.{depth}.norm1.weight" in state:
        depth += 1
    if depth == 0:
        raise CheckpointError(f"checkpoint {path} has no transformer blocks (blocks.0.norm1.weight missing)")
    if w.shape[-1] != w.shape[-2]:
        raise CheckpointError(f"checkpoint {path}: non-square patches {tuple(w.shape[-2:])} are not supported")
    cfg: dict[str, Any] = {k: v for k, v in COMMON.items()}
    cfg.update(embed_dim=dim, depth=depth, patch_size=int(w.shape[-1]), in_chans=int(w.shape[1]))
    cfg["n_storage_tokens"] = int(state["storage_tokens"].shape[1]) if "storage_tokens" in state else 0
    b = "blocks.0."
    if f"{b}mlp.fc1.weight" in state:
        cfg["ffn_layer"] = "mlp"
        hidden = int(state[f"{b}mlp.fc1.weight"].shape[0])
        cfg["ffn_bias"] = f"{b}mlp.fc1.bias" in state
    elif f"{b}mlp.w1.weight" in state:
        cfg["ffn_layer"] = "swiglu"
        hidden = int(state[f"{b}mlp.w1.weight"].shape[0])
        cfg["ffn_bias"] = f"{b}mlp.w1.bias" in state
    else:
        raise CheckpointError(f"checkpoint {path}: blocks.0.mlp has neither fc1 (MLP) nor w1 (SwiGLU) weights")
    cfg["qkv_bias"] = f"{b}attn.qkv.bias" in state
    cfg["mask_k_bias"] = f"{b}attn.qkv.bias_mask" in state if cfg["qkv_bias"] else True
    cfg["proj_bias"] = f"{b}attn.proj.bias" in state
    cfg["layerscale_init"] = 1e-5 if f"{b}ls1.gamma" in state else None
    cfg["norm_layer"] = "layernormbf16" if "norm.bias" in state else "rmsnorm"
    cfg["untie_cls_and_patch_norms"] = "cls_norm.weight" in state
    cfg["untie_global_and_local_cls_norm"] = "local_cls_norm.weight" in state

    heads = None
    periods = state.get("rope_embed.periods")
    if periods is not None and periods.numel() > 0 and dim % (4 * periods.numel()) == 0:
        head_dim = 4 * periods.numel()
        heads = dim // head_dim
        if not periods.is_meta:
            _infer_rope_periods(cfg, periods.float(), head_dim)
    if heads is None:
        heads = default_heads(dim)
    cfg["num_heads"] = heads

    # Name the architecture when it is a table entry, and keep the hidden size explicit otherwise.
    cfg["arch"] = None
    for name in ARCHS:
        ref = arch_kwargs(name)
        ref_hidden = ffn_hidden_dim(ref["ffn_layer"], ref["embed_dim"], ref["ffn_ratio"])
        same_ffn = (ref["ffn_layer"] == "mlp") == (cfg["ffn_layer"] == "mlp")
        same_size = (ref["embed_dim"], ref["depth"], ref["num_heads"]) == (dim, depth, heads)
        if same_size and same_ffn and ref_hidden == hidden:
            cfg["arch"] = name
            cfg["ffn_layer"] = ref["ffn_layer"]
            cfg["ffn_ratio"] = ref["ffn_ratio"]
            break
    if cfg["arch"] is None:
        cfg["ffn_ratio"] = hidden / dim
    cfg["ffn_hidden_dim"] = hidden
    return cfg


def _infer_rope_periods(cfg: dict[str, Any], periods: Tensor, head_dim: int) -> None:
    """Set pos_embed_rope_base, or min/max periods, so that the rebuilt buffer reproduces `periods`."""
    n = periods.numel()
    if n == 1:
        return
    base = float(periods[1]) ** (head_dim / 4)
    expect = base ** (2 * torch.arange(n, dtype=torch.float64) / (head_dim // 2))
    # bf16-rounded buffers (as in the released files) still match within bf16 precision
    if math.isfinite(base) and torch.allclose(expect.float(), periods, rtol=1e-2):
        for nice in (100.0, 10000.0, 1000.0, 10.0):
            if abs(base - nice) / nice < 0.05:
                base = nice
                break
        cfg["pos_embed_rope_base"] = base
        cfg["pos_embed_rope_min_period"] = None
        cfg["pos_embed_rope_max_period"] = None
    else:
        cfg["pos_embed_rope_base"] = None
        cfg["pos_embed_rope_min_period"] = float(periods[0])
        cfg["pos_embed_rope_max_period"] = float(periods[-1])
