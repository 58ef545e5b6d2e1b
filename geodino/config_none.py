"""What an unset (None) config key does, in a word for the `--help` config-keys list (`config.describe`).

`--help` printed `roi=None`, `margin=None`, `fused=None`: Python's word for "not given", which says neither what a
YAML user writes (`null`) nor what the run then does (no ROI, overlap/4, chosen from the device). Here each such key
gets the word for what it stands for, as the docs' key tables say it: `roi=off`, `margin=overlap/4`, `fused=auto`.
The words are listed in `WORDS` by class and field, one table beside the docs' key tables rather than metadata on
each schema's fields. A class is named by its own name, not its module's path: a split that moves a class to another
module (as one moved `SuiteConfig` from `geodino.eval.runner` to `runner_tasks`) leaves its words in place, where a
"module.Class" key had to move with it. tests/test_cli_help_text.py checks that every word stands for a None default
of the code and that no two config classes share a name, so a default that changes (or a class renamed) leaves no
stale word.
"""

from __future__ import annotations

import dataclasses
from typing import Any

__all__ = ["HEADER", "WORDS", "none_word"]

HEADER = "config keys (defaults): a bare word, such as auto or off, says what the key does unset (null in YAML)"
"""The config-keys list's first line: the words are not values to write (`roi=off` would name a file "off")."""

_TEACHERS = "the teacher's"
_EACH_SCENE = "each scene's"

# class name (`__qualname__`: the same after a move to another module) -> field -> word; the docs' key tables
# (docs/data.md, docs/embed.md ...) say the same
WORDS: dict[str, dict[str, str]] = {
    "PretrainConfig": {"init_from": "off (random weights)"},
    "KoLeoConfig": {"group_size": "the global batch"},
    "GramConfig": {"ckpt": "the EMA teacher", "max_updates": "unlimited"},
    "OptimConfig": {"fused": "auto"},
    "SchedulesConfig": {"reference_iters": "off (iterations as written)"},
    "ScheduleConfig": {"cosine_iters": "the rest of the run"},
    "SourceConfig": {
        "sensor": "by type (images, tar: imagenet; rasters: from the files)",
        "bands": "all",
        "band_names": "the files'",
        "nodata": "the files'",
        "stride": "tile_size",
        "roi": "off",
        "crs": _EACH_SCENE,
        "res": _EACH_SCENE,
        "on_error": "by type (images, tar: skip; else stop)",
        "index_cache": "off",
        "variable": "auto",
        "band_dim": "auto",
        "dataset": "unset (torchgeo: required)",
    },
    "DataConfig": {"norm_sensor": "each source's sensor"},
    "CropsConfig": {"gram_size": "2 x global_size", "hue_space": "yiq"},
    "CropSet": {"gram_size": "2 x global_size"},
    "StudentSpec": {
        "patch_size": _TEACHERS,
        "ranks": "every rank",
        "share": "every rank",
        "dino_head_n_prototypes": _TEACHERS,
        "ibot_head_n_prototypes": _TEACHERS,
        "head_hidden_dim": "the teacher head's",
        "head_bottleneck_dim": "the teacher head's",
    },
    "EmbedConfig": {
        "margin": "overlap/4",
        "l2_normalize": "auto (on for int8)",
        "sensor": "unset",
        "scale": "the export's record, else from the dtype",
        "band_scale": "from the file",
        "band_offset": "from the file",
        "bands": "all",
        "nodata": "the input's",
        "variable": "auto",
        "time": "unset (a cube with dates: required)",
        "bbox": "the whole raster",
        "bbox_crs": "the raster's",
        "grid_offset": "the input's own grid",
        "window": "the whole raster",
        "asset": "unset (STAC input: required)",
        "asset_bands": "all",
    },
}


def none_word(cls: Any, name: str) -> str | None:
    """The word `WORDS` gives field `name` of dataclass `cls` for its None default; None when it has none (the list
    then shows `None`)."""
    if not dataclasses.is_dataclass(cls):
        return None
    owner = cls if isinstance(cls, type) else type(cls)
    return WORDS.get(owner.__qualname__, {}).get(name)
