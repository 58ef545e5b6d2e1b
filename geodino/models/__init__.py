"""The DINOv3 ViT backbone (pure torch): architectures, layers, checkpoints and format converters.

`build_model`, `count_parameters` and `DinoVisionTransformer` load torch on first use (`geodino.models.build`),
so that importing a sub-module such as `geodino.models.commands` for the CLI parser stays light.
"""

from __future__ import annotations

from typing import Any

from geodino.models.archs import ARCHS

__all__ = ["ARCHS", "DinoVisionTransformer", "build_model", "count_parameters"]


def __getattr__(name: str) -> Any:
    """`DinoVisionTransformer`, `build_model`, `count_parameters` from `geodino.models.build`, on first use."""
    if name in ("DinoVisionTransformer", "build_model", "count_parameters"):
        from geodino.models import build

        return getattr(build, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def __dir__() -> list[str]:
    """The module's names plus the lazily imported ones of `__all__`, so `dir()` and tab completion list them."""
    return sorted(set(globals()) | set(__all__))
