"""Raster tiles much larger than the global crops cut from them: the model learns the scene several times coarser
than embed and the probes feed it (and each step reads pixels it throws away). Warned once per source, with the
tile size that fits; no shipped config warns."""

from __future__ import annotations

import math
from pathlib import Path

import pytest

from geodino.config import load_config
from geodino.data.config import DataConfig, SourceConfig
from geodino.data.crops import CropsConfig
from geodino.data.loaders import warn_coarse_tiles

ROOT = Path(__file__).resolve().parents[2]


def test_small_recipe_crops_on_default_raster_tiles_are_warned_with_the_numbers():
    """small_vit_tiny's 48 px crops on a raster source of the default 256 px tiles: crops of 256 * sqrt(0.32) =
    145 px to 256 px, resized to 48 px: 3.0-5.3x coarser; tile_size 64 (4/3 of 48) is suggested."""
    data = DataConfig(sources=[SourceConfig(name="l7", type="raster", paths=["x.tif"])])
    crops = CropsConfig(global_size=48, local_size=24)
    with pytest.warns(UserWarning) as rec:
        said = warn_coarse_tiles(data, crops)
    assert len(said) == 1 and str(rec[0].message) == said[0]
    lo, hi = 256 * math.sqrt(0.32), 256.0
    assert f"global crops of {lo:.0f}-{hi:.0f} px resized to 48 px" in said[0]
    assert f"{lo / 48:.1f}-{hi / 48:.1f}x coarser" in said[0] and "3.0-5.3x" in said[0]
    assert said[0].startswith("data source l7: tiles of 256 px") and "set tile_size: 64 on the source" in said[0]


def test_fitting_tiles_chips_and_metre_tiles_are_not_warned(recwarn):
    crops = CropsConfig(global_size=48, local_size=24)
    for src in (
        SourceConfig(type="raster", paths=["x.tif"], tile_size=64),  # 1.1-1.3x: what the warning suggests
        SourceConfig(type="images", paths=["chips/"]),  # read whole at their own size
        SourceConfig(type="raster", paths=["x.tif"], tile_size=2560, tile_units="m"),  # needs the resolution
    ):
        assert warn_coarse_tiles(DataConfig(sources=[src]), crops) == []
    assert not recwarn.list


TRAINING_CONFIGS = sorted(
    [*(ROOT / "configs" / "pretrain").glob("*.yaml"), *(ROOT / "configs" / "distill").glob("*.yaml")]
)


@pytest.mark.parametrize("path", TRAINING_CONFIGS, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_no_shipped_config_warns(path, recwarn):
    """Every shipped pretraining and distillation config sizes its raster tiles to its crops."""
    from geodino.train.config import PretrainConfig
    from geodino.train.distill.config import DistillConfig

    schema = {"pretrain": PretrainConfig, "distill": DistillConfig}[path.parent.name]
    cfg = load_config(schema, path)
    assert warn_coarse_tiles(cfg.data, cfg.crops) == []
