"""`datamodule_stats(..., sensor=...)` resolves band names as `geodino_vit(..., sensor=...)` does: HLS names such as
NIR_NARROW, ambiguous across sensors, could build the backbone but not its datamodule statistics."""

from __future__ import annotations

import pytest
import torch

from geodino.errors import ConfigError
from geodino.integrations.terratorch import datamodule_stats, geodino_vit
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone

REC = {  # as `geodino export` records a demo run's data
    "sensor": "demo4",
    "bands": ["blue", "green", "red", "nir"],
    "scale": 1e-4,
    "mean": [0.05, 0.08, 0.07, 0.3],
    "std": [0.02, 0.03, 0.04, 0.1],
}


def test_datamodule_stats_take_the_sensor_the_backbone_takes(tmp_path):
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1)
    path = str(save_backbone(model, tmp_path / "bb.pth", normalization=REC))
    bands = ["NIR_NARROW", "BLUE", "RED"]
    bb = geodino_vit(ckpt_path=path, bands=bands, sensor="landsat8")
    w = model.patch_embed.proj.weight
    torch.testing.assert_close(bb.model.patch_embed.proj.weight, w[:, [3, 0, 2]])  # nir, blue, red kernels (a subset)
    with pytest.raises(ConfigError, match=r"not NIR_NARROW; .*pass sensor=NAME as to geodino_vit"):
        datamodule_stats(path, bands=bands)
    means, stds = datamodule_stats(path, bands=bands, sensor="landsat8")
    # the statistics of the kernels' bands, in DN units (mean / scale): nir, blue, red
    assert means == pytest.approx([3000.0, 500.0, 700.0]) and stds == pytest.approx([1000.0, 200.0, 400.0])
    with pytest.raises(ConfigError, match=r"covers bands blue, green, red, nir, not SWIR_1; give the datamodule"):
        datamodule_stats(path, bands=["RED", "SWIR_1"], sensor="landsat8")
