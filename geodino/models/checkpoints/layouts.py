"""Key layouts of a backbone state_dict: which one a state_dict is in (official DINOv3, Hugging Face
`DINOv3ViTModel` or timm `*_dinov3`) and its conversion to the official layout every other part works in."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

from torch import Tensor

from geodino.errors import CheckpointError


def detect_layout(state: Mapping[str, Tensor], path: str | Path = "<state_dict>") -> str:
    """'official', 'hf' or 'timm' from the key names."""
    keys = set(state)
    if "embeddings.patch_embeddings.weight" in keys or any(k.startswith(("layer.0.", "model.layer.0.")) for k in keys):
        return "hf"
    if "reg_token" in keys or "blocks.0.gamma_1" in keys or "blocks.0.mlp.fc1_g.weight" in keys:
        return "timm"
    if "blocks.0.attn.q_bias" in keys:
        return "timm"
    if "patch_embed.proj.weight" in keys and "cls_token" in keys:
        return "official"
    raise CheckpointError(
        f"checkpoint {path}: unknown key layout (e.g. {sorted(keys)[:3]}); expected the official DINOv3, HF "
        "DINOv3ViTModel or timm *_dinov3 layout"
    )


def to_official(
    state: Mapping[str, Tensor],
    layout: str,
    path: str | Path = "<state_dict>",
    *,
    num_heads: int | None = None,
    rope_base: float = 100.0,
) -> dict[str, Tensor]:
    """Convert a state_dict from `layout` to the official layout (a shallow copy when already official).

    HF and timm files store no RoPE periods, so the head count (which sets the periods' length) comes from
    `num_heads`, else from the architecture table for the width (HF folders carry it in config.json).
    """
    if layout == "official":
        return dict(state)
    if layout == "hf":
        from geodino.models.checkpoints.hf import hf_to_official

        return hf_to_official(state, num_heads=num_heads, rope_theta=rope_base)
    if layout == "timm":
        from geodino.models.checkpoints.timm import timm_to_official

        return timm_to_official(state, num_heads=num_heads, rope_base=rope_base)
    raise CheckpointError(f"checkpoint {path}: unknown layout {layout!r}; use official, hf or timm")
