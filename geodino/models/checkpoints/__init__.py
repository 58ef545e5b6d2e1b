"""Backbone checkpoints: reading any supported file into the official layout, building its model, band
adaptation, saving and conversion between layouts. The public functions are importable from here; the parts are:

- `files`: the one safe reader (files and sharded folders), the one strict loader, the heads sidecar;
- `reading`: any supported file or folder to `BackboneWeights` (`read_backbone_weights`), with `unwrap` (the
  backbone inside a checkpoint object: wrapper, key prefix, `which`) and `layouts` (detecting a key layout and
  converting it to the official one);
- `build`: the strict load with its hint and the model a state_dict belongs to (`build_from_state`, `load_model`);
- `infer`: the architecture of a state_dict from its shapes (RoPE periods, default heads);
- `bands`: band adaptation of the patch embedding (`resolve_bands`);
- `hf`, `timm`: the Hugging Face transformers and timm layouts (sharing `keymap`);
- `save`: writing backbones and exports (`save_backbone`, `save_export`); `reproducible`: their byte-reproducible
  writers (a fixed zip root in `.pth` files, sorted safetensors metadata);

Accepted inputs, all turned into the official DINOv3 state_dict layout:

- official backbone releases `dinov3_*_pretrain_{lvd1689m,sat493m}-*.pth` (plain state_dict);
- official eval dumps `{"teacher": {"backbone.*", "dino_head.*", "ibot_head.*"}}`;
- geodino training checkpoints (`{"state_dict": {"arch.teacher.backbone.*", ...}, "geodino": {...}}`), distill
  checkpoints (a student's EMA or raw weights: `distill`) and exports (`X.pth` / `X.safetensors`, build kwargs
  in the safetensors metadata or the `X.heads.pth` sidecar);
- `{"model": ...}` / `{"state_dict": ...}` wrappers with any key prefix;
- Hugging Face transformers `DINOv3ViTModel` files or folders (`config.json` + `model.safetensors`) and timm
  `vit_*_patch16_dinov3` (Eva) state_dicts.

The architecture is inferred from the shapes (`infer_config`), so a file alone is enough to build its model.
"""

from __future__ import annotations

from typing import Any

# `noqa: F401`: names this package imported for its own code before that code moved to its modules; kept importable
from geodino.errors import CheckpointError, ConfigError  # noqa: F401
from geodino.models.checkpoints.bands import (
    RGB,
    adapt_patch_embed,
    adapt_state_bands,
    match_bands,
    resolve_bands,
    same_bands,
    weights_to_bands,  # noqa: F401
)
from geodino.models.checkpoints.build import build_from_state, check_fits, load_model, load_weights
from geodino.models.checkpoints.distill import distill_backbone, is_distill_checkpoint  # noqa: F401
from geodino.models.checkpoints.files import (
    HEAD_NAMES,
    HEADS_SUFFIX,
    SAFETENSORS_CONFIG_KEY,  # noqa: F401
    BackboneWeights,
    heads_path,
    incomplete_hint,  # noqa: F401
    load_file,
    load_strict,
    read_file,
    read_heads,
    read_sidecar,  # noqa: F401
    strict_mismatch,  # noqa: F401
    write_heads,
)
from geodino.models.checkpoints.infer import default_heads, infer_config, rope_periods
from geodino.models.checkpoints.layouts import detect_layout, to_official
from geodino.models.checkpoints.normalization import (
    NORMALIZATION_KEY,  # noqa: F401
    check_normalization,  # noqa: F401
    from_json,  # noqa: F401
    from_mean_std,  # noqa: F401
    from_run_config,  # noqa: F401
    normalization_of_training,
)
from geodino.models.checkpoints.reading import check_which, read_backbone_weights
from geodino.models.checkpoints.save import export_paths, save_backbone, save_export, save_pth, save_safetensors
from geodino.models.checkpoints.unwrap import backbone_state

__all__ = [
    "HEADS_SUFFIX",
    "HEAD_NAMES",
    "LAYOUTS",
    "RGB",
    "BackboneWeights",
    "adapt_patch_embed",
    "adapt_state_bands",
    "backbone_state",
    "build_from_state",
    "check_architecture",
    "check_fits",
    "check_which",
    "convert_checkpoint",
    "default_heads",
    "detect_layout",
    "export_paths",
    "heads_path",
    "infer_config",
    "load_file",
    "load_model",
    "load_strict",
    "load_weights",
    "match_bands",
    "normalization_of_training",
    "read_backbone_weights",
    "read_file",
    "read_heads",
    "resolve_bands",
    "rope_periods",
    "same_bands",
    "save_backbone",
    "save_export",
    "save_pth",
    "save_safetensors",
    "to_official",
    "write_heads",
]


def __getattr__(name: str) -> Any:
    """`convert_checkpoint`, `check_architecture` and `LAYOUTS` live in `convert.py` (the `geodino convert` job)."""
    if name in ("convert_checkpoint", "check_architecture", "LAYOUTS"):
        from geodino.models.checkpoints import convert

        return getattr(convert, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
