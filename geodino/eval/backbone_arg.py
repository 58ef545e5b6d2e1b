"""The `backbone` argument of the probe entry points: a loaded backbone, or a spec string loaded here."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from geodino.errors import ConfigError

NEEDED = ("features", "patch_size", "in_chans")
"""What every probe uses of `geodino.backbones.FrozenBackbone`."""


def probe_backbone(backbone: Any) -> Any:
    """`backbone` as the probes take it: a spec string or path (`arch:vit_small`, a checkpoint, `timm:NAME`) is
    loaded with `geodino.backbones.load_backbone` (on the CPU; load it yourself to choose bands, sensor or device),
    as `embed_raster` does; a FrozenBackbone (anything with NEEDED) is used as it is; anything else is one line."""
    if isinstance(backbone, str | Path):
        if not str(backbone).strip():
            raise ConfigError("no backbone given; pass a spec (a checkpoint, arch:vit_small, timm:NAME ...)")
        from geodino.backbones import load_backbone

        return load_backbone(str(backbone))
    missing = [a for a in NEEDED if not hasattr(backbone, a)]
    if missing:
        raise ConfigError(
            f"backbone {type(backbone).__name__} lacks {', '.join(missing)}; pass a spec string (a checkpoint, "
            "arch:vit_small, timm:NAME ...) or a FrozenBackbone from geodino.backbones.load_backbone"
        )
    return backbone
