"""Frozen backbones from a spec string: what probes, feature rasters and distillation share.

A spec is one of:

- a checkpoint path: official `dinov3_*.pth`, a geodino export (`.pth` / `.safetensors`) or training checkpoint
  (`.ckpt`), an HF `DINOv3ViTModel` folder (`config.json` + `model.safetensors`), a timm `*_dinov3` state_dict;
  the architecture is inferred from the weights;
- `arch:vit_small` — a randomly initialised geodino backbone (a baseline, and for tests);
- `timm:<name>` — any timm model, through timm's `forward_intermediates` (a baseline; `pretrained=true` needs the
  HF hub or its cache);
- `baseline:colour` — per-band colour statistics (mean, std, histogram) of each image and each patch, the
  strongest simple baseline, through the same interface (`backbones.colour`; options `patch_size`, `bins`,
  `range`, `in_chans`; the band count also comes from `bands` or the sensor).

Options follow a `?`, joined by `&`: `seed=0`, `bands=12` or `bands=B02,B03,B04,B08`, `patch_size=16`,
`sensor=sentinel2_l2a`, `fill=mean|zeros` (band adaptation), `which=teacher|student` (checkpoints holding
several backbones; refused for a file holding one), `pretrained=true` (timm), and for `arch:` any build option
(`depth=2`, `in_chans=...`).
Keyword arguments of `load_backbone` win over spec options.

`FrozenBackbone.features(x, layers)` returns patch maps [B, D, h, w] and CLS tokens [B, D] from chosen blocks
("last", "four_last", "four_even" (blocks every quarter: ViT-L [5, 11, 17, 23]), "four_even_official" (the
official evaluation's ViT-L [4, 11, 17, 23] quirk) or a list of block indices). Inputs to `features` are
already normalised: `normalize(x)` standardises reflectance-scaled input with the backbone's sensor mean/std.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from geodino.lazy import lazy_names

if TYPE_CHECKING:  # for type checkers and editors; at run time the names load on first use (`__getattr__`)
    from geodino.backbones.frozen import FrozenBackbone
    from geodino.backbones.layers import LAYER_SETS, layer_indices
    from geodino.backbones.load import load_backbone
    from geodino.backbones.normalization import IMAGENET_MEAN, IMAGENET_STD, SAT493M_MEAN, SAT493M_STD
    from geodino.backbones.spec import as_int as as_int
    from geodino.backbones.spec import check_build_options as check_build_options
    from geodino.backbones.spec import parse_spec
    from geodino.backbones.spec import parse_value as parse_value
    from geodino.backbones.timm import build_timm as build_timm
    from geodino.backbones.timm import timm_geometry as timm_geometry

_HOMES = {
    "FrozenBackbone": "frozen",
    "LAYER_SETS": "layers",
    "layer_indices": "layers",
    "load_backbone": "load",
    "IMAGENET_MEAN": "normalization",
    "IMAGENET_STD": "normalization",
    "SAT493M_MEAN": "normalization",
    "SAT493M_STD": "normalization",
    "as_int": "spec",
    "check_build_options": "spec",
    "parse_spec": "spec",
    "parse_value": "spec",
    "build_timm": "timm",
    "timm_geometry": "timm",
}
"""Each name's module: imported on first use, so that `import geodino.backbones.spec` (the spec parser, which the
CLI's checks and `geodino.models.info` use) imports no torch; the package imported every module, torch with them."""


__getattr__, __dir__ = lazy_names(__name__, {name: f"geodino.backbones.{home}" for name, home in _HOMES.items()})


# as_int, check_build_options, parse_value, build_timm, timm_geometry: helpers of geodino's own modules
# (geodino.models.info), not user API; importable by name (the `x as x` re-exports), left out of __all__
__all__ = [
    "IMAGENET_MEAN",
    "IMAGENET_STD",
    "LAYER_SETS",
    "SAT493M_MEAN",
    "SAT493M_STD",
    "FrozenBackbone",
    "layer_indices",
    "load_backbone",
    "parse_spec",
]
