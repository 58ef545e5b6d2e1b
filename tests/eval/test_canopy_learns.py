"""The canopy head starts at the training heights' scale and can be given a step budget (min_steps): before, a
DPT head took 60-90 AdamW steps on one raster (epochs alone) from a start at the bins' mean (about 31 m) and
predicted about the median everywhere (R2 < 0) where ridge on the same patch features reached 0.7."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
import torch
from rasterio.transform import from_origin
from scipy.ndimage import gaussian_filter

from geodino.eval.canopy import CanopyProbeConfig, build_model, train_epochs
from geodino.eval.height_head import init_output


def write_plot(tmp_path, n: int = 128) -> tuple[str, str]:
    """A 0.5 m RGB raster whose brightness falls with height, and its 1 m CHM (0..~25 m, many low pixels)."""
    rng = np.random.default_rng(0)
    height = np.clip(gaussian_filter((rng.random((n, n)) > 0.985).astype(float), 4) * 900, 0, 25)
    img = np.stack([0.6 - height / 60, 0.7 - height / 50, 0.5 - height / 70]) + 0.01 * rng.standard_normal((3, n, n))
    img_path, chm_path = tmp_path / "plot.tif", tmp_path / "plot_CHM.tif"
    profile = {"driver": "GTiff", "crs": "EPSG:32611", "width": n, "height": n}
    with rasterio.open(
        img_path, "w", **profile, count=3, dtype="uint8", transform=from_origin(300000.0, 4100000.0, 0.5, 0.5)
    ) as dst:
        dst.write(np.clip(img * 255, 0, 255).astype("uint8"))
    chm = height.reshape(n // 2, 2, n // 2, 2).mean((1, 3)).astype("float32")
    profile.update(width=n // 2, height=n // 2)
    with rasterio.open(
        chm_path, "w", **profile, count=1, dtype="float32", transform=from_origin(300000.0, 4100000.0, 1.0, 1.0)
    ) as dst:
        dst.write(chm[None])
    return str(img_path), str(chm_path)


def test_min_steps_raises_epochs_and_zero_keeps_them():
    cfg = CanopyProbeConfig(epochs=20, batch_size=4, min_steps=500)
    assert train_epochs(cfg, 12) == 167  # 3 steps an epoch, 500 steps
    with pytest.warns(UserWarning, match="canopy head: 60 optimiser steps"):
        assert train_epochs(CanopyProbeConfig(epochs=20, batch_size=4, min_steps=0), 12) == 20
    assert train_epochs(CanopyProbeConfig(epochs=400, batch_size=4, min_steps=500), 12) == 400


@pytest.mark.parametrize("output,median", [("mixlog", 0.0), ("mixlog", 4.0), ("uniform", 4.0), ("direct", 4.0)])
def test_the_head_starts_at_the_training_median(output, median):
    torch.manual_seed(0)
    model = build_model(CanopyProbeConfig(output=output, n_bins=64, dpt_channels=16), 16, 4)
    init_output(model, median)
    maps, cls = [torch.randn(2, 16, 4, 4) for _ in range(4)], [torch.randn(2, 16) for _ in range(4)]
    with torch.no_grad():
        heights = model.decoder(model(maps, cls))
    assert abs(float(heights.mean()) - median) < 1.0


def test_a_short_head_without_a_step_budget_is_warned_about(recwarn):
    """20 epochs of one small raster (60 steps) left the notebook's head at the median (R2 -0.08): said once."""
    with pytest.warns(UserWarning, match="set min_steps"):
        train_epochs(CanopyProbeConfig(epochs=20, batch_size=4), 12)
    recwarn.clear()
    train_epochs(CanopyProbeConfig(epochs=20, batch_size=4, min_steps=300), 12)  # a budget: quiet
    train_epochs(CanopyProbeConfig(epochs=100, batch_size=4), 12)  # 300 steps by epochs: quiet
    assert not [w for w in recwarn if "canopy head" in str(w.message)]
