"""Architecture table: official DINOv3 ViT sizes and the settings of the released checkpoints.

Every entry builds with the settings of the released hub models (`dinov3/hub/backbones.py`): RoPE base 100 with
per-axis ("separate") coordinate normalisation and train-time rescale 2, float32 RoPE, LayerScale 1e-5,
`layernormbf16` (LayerNorm eps 1e-5), 4 storage tokens, masked key bias, all biases on (7B: no qkv bias).
`vit_tiny` is not an official size (it matches timm's `vit_tiny_patch16_dinov3_qkvb`) and exists for tests
and smoke runs; `vit_so400m`, `vit_huge2` and `vit_giant2` are official factories without released weights.
"""

from __future__ import annotations

from typing import Any

# Settings shared by every released DINOv3 ViT; an ARCHS entry overrides them.
COMMON: dict[str, Any] = {
    "patch_size": 16,
    "in_chans": 3,
    "qkv_bias": True,
    "proj_bias": True,
    "ffn_bias": True,
    "ffn_layer": "mlp",
    "ffn_ratio": 4.0,
    "ffn_hidden_dim": None,
    "drop_path_rate": 0.0,
    "layerscale_init": 1e-5,
    "norm_layer": "layernormbf16",
    "n_storage_tokens": 4,
    "mask_k_bias": True,
    "untie_cls_and_patch_norms": False,
    "untie_global_and_local_cls_norm": False,
    "pos_embed_rope_base": 100.0,
    "pos_embed_rope_min_period": None,
    "pos_embed_rope_max_period": None,
    "pos_embed_rope_normalize_coords": "separate",
    "pos_embed_rope_shift_coords": None,
    "pos_embed_rope_jitter_coords": None,
    "pos_embed_rope_rescale_coords": 2.0,
    "pos_embed_rope_dtype": "fp32",
    "rope_sampling": "per_block",
}

ARCHS: dict[str, dict[str, Any]] = {
    "vit_tiny": {"embed_dim": 192, "depth": 12, "num_heads": 3},
    "vit_small": {"embed_dim": 384, "depth": 12, "num_heads": 6},
    "vit_small_plus": {"embed_dim": 384, "depth": 12, "num_heads": 6, "ffn_layer": "swiglu", "ffn_ratio": 6.0},
    "vit_base": {"embed_dim": 768, "depth": 12, "num_heads": 12},
    "vit_large": {"embed_dim": 1024, "depth": 24, "num_heads": 16},
    "vit_large_plus": {"embed_dim": 1024, "depth": 24, "num_heads": 16, "ffn_layer": "swiglu", "ffn_ratio": 6.0},
    "vit_huge_plus": {"embed_dim": 1280, "depth": 32, "num_heads": 20, "ffn_layer": "swiglu", "ffn_ratio": 6.0},
    "vit_7b": {
        "embed_dim": 4096,
        "depth": 40,
        "num_heads": 32,
        "ffn_layer": "swiglu64",
        "ffn_ratio": 3.0,
        "qkv_bias": False,
        "untie_global_and_local_cls_norm": True,
    },
    # Official factories without released weights.
    "vit_so400m": {"embed_dim": 1152, "depth": 27, "num_heads": 18, "ffn_ratio": 3.777777778},
    "vit_huge2": {"embed_dim": 1280, "depth": 32, "num_heads": 20},
    "vit_giant2": {"embed_dim": 1536, "depth": 40, "num_heads": 24},
}

# Released checkpoints per architecture (official hub names and weight sets).
RELEASED: dict[str, str] = {
    "vit_small": "dinov3_vits16 (LVD-1689M)",
    "vit_small_plus": "dinov3_vits16plus (LVD-1689M)",
    "vit_base": "dinov3_vitb16 (LVD-1689M)",
    "vit_large": "dinov3_vitl16 (LVD-1689M, SAT-493M with local_cls_norm)",
    "vit_large_plus": "dinov3_vitl16plus (LVD-1689M)",
    "vit_huge_plus": "dinov3_vith16plus (LVD-1689M)",
    "vit_7b": "dinov3_vit7b16 (LVD-1689M, SAT-493M)",
}


def arch_kwargs(arch: str) -> dict[str, Any]:
    """Full build kwargs of a named architecture (COMMON updated with its entry), without overrides."""
    from geodino.errors import ConfigError

    if arch not in ARCHS:
        from geodino.errors import did_you_mean

        close = did_you_mean(arch, ARCHS)
        hint = f" (did you mean {close[0]}?)" if close else ""
        raise ConfigError(f"unknown architecture {arch!r}{hint}; valid: {', '.join(ARCHS)}")
    return {**COMMON, **ARCHS[arch]}
