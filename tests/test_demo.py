"""The demo's steps, run through the public CLI at the tiniest size."""

from __future__ import annotations

import json

import numpy as np
import pytest

from geodino.demo_data import CLASSES, landcover_map, write_demo_scene


def test_demo_scene_is_georeferenced_and_has_every_class(tmp_path):
    import rasterio

    scene, labels = write_demo_scene(tmp_path / "s.tif", size=128, seed=3)
    with rasterio.open(scene) as src, rasterio.open(labels) as lab:
        assert (src.count, src.dtypes[0], src.nodata, src.crs.to_epsg()) == (4, "uint16", 0, 32633)
        assert src.transform == lab.transform and src.descriptions == ("blue", "green", "red", "nir")
        data, lc = src.read(), lab.read(1)
    assert (data[:, lc == 255] == 0).all() and (data[:, lc != 255] > 0).all()  # nodata corner, valid elsewhere
    assert set(np.unique(landcover_map(256, 0))) == set(range(len(CLASSES)))
    # NIR/red separates vegetation from water, as real spectra do
    ndvi = (data[3].astype(float) - data[2]) / (data[3].astype(float) + data[2] + 1e-6)
    assert ndvi[lc == 1].mean() > 0.6 and ndvi[lc == 0].mean() < 0


@pytest.mark.slow
def test_demo_runs_every_step(tmp_path):
    import rasterio

    from geodino.cli import main

    out = tmp_path / "demo"
    assert main(["demo", "--out", str(out), "--size", "tiny"]) == 0
    summary = json.loads((out / "summary.json").read_text())
    paths = summary["paths"]
    for key in ("backbone", "features", "pca_cog", "pca_png", "sensor"):
        assert (out / paths[key]).exists(), key
    with rasterio.open(paths["scene"]) as src, rasterio.open(paths["features"]) as feat:
        assert feat.crs == src.crs
        assert feat.transform.a == pytest.approx(src.transform.a * 8)  # patch-grid output (patch 8)
        assert (feat.transform.c, feat.transform.f) == (src.transform.c, src.transform.f)
        assert feat.count == 192
    with rasterio.open(paths["pca_cog"]) as pca:
        assert (pca.count, pca.dtypes[0]) == (3, "uint8")
    assert [c.split()[1] for c in summary["commands"]] == [
        "data",
        "pretrain",
        "pretrain",
        "export",
        "embed",
        "embed",
        "probe",
        "probe",
    ]
    metrics = summary["metrics"]
    assert 0.0 <= metrics["demo_landcover/knn_top1"]["pretrained"] <= 1.0
    assert set(metrics["demo_landcover/linear_top1"]) == {"pretrained", "random"}
