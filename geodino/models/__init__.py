"""The DINOv3 ViT backbone (pure torch): architectures, layers, checkpoints and format converters.

`build_model`, `count_parameters` and `DinoVisionTransformer` load torch on first use (`geodino.models.build`),
so that importing a sub-module such as `geodino.models.commands` for the CLI parser stays light.
"""

from __future__ import annotations

from geodino.lazy import lazy_names
from geodino.models.archs import ARCHS

__all__ = ["ARCHS", "DinoVisionTransformer", "build_model", "count_parameters"]


__getattr__, __dir__ = lazy_names(
    __name__, dict.fromkeys(("DinoVisionTransformer", "build_model", "count_parameters"), "geodino.models.build")
)
