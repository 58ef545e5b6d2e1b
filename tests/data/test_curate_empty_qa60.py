"""A QA60 cloud screen that flags nothing anywhere is named in one warning: Sentinel-2 L1C of processing baseline
04.00+ (from 2022-01-25) ship QA60 empty (clouds moved to MSK_CLASSI_OPAQUE / MSK_CLASSI_CIRRUS), so the qa rule
passed every tile of such an archive without a word. A QA60 band with one cloud bit set, and the other QA kinds,
stay silent."""

from __future__ import annotations

import numpy as np
import pytest

from geodino import cli
from geodino.data.curate.clouds import cloud_rule, empty_qa60
from geodino.data.sensors import Sensor, get_sensor


def _qa(bands):
    n = len(bands)
    return Sensor("t", tuple(bands), 1.0, (0.1,) * n, (0.1,) * n, False)


def test_empty_qa60_names_only_qa60_sources_without_any_cloud():
    q60 = cloud_rule(_qa(["B02", "B03", "B04", "QA60"]))
    scl = cloud_rule(_qa(["B02", "B03", "B04", "SCL"]))
    swir = cloud_rule(get_sensor("sentinel2_l2a"))
    source_of = np.array([0, 0, 1, 1, 2, 2, 3, 3])
    cloud = np.array([0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.2])
    nodata = np.array([0.0, 1.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0])
    assert empty_qa60([q60, scl, swir, q60], source_of, cloud, nodata) == [0]
    assert empty_qa60([q60], np.zeros(2, int), np.zeros(2), np.ones(2)) == []  # only nodata tiles: nothing to tell


def _scene(tmp_path, qa60):
    import rasterio

    from tests.embed.conftest import write_tif

    rng = np.random.default_rng(0)
    data = np.zeros((5, 32, 128), np.uint16)
    data[:4] = rng.integers(300, 2000, (4, 32, 128))
    data[4] = qa60
    path = write_tif(tmp_path / "l1c.tif", data, nodata=0)
    with rasterio.open(path, "r+") as ds:
        ds.descriptions = ("B02", "B03", "B04", "B08", "QA60")
    return path


def _curate(tif, out):
    argv = ["data", "curate", str(tif), "--type", "raster", "--sensor", "sentinel2_l2a", "--bands", "B02", "B03"]
    argv += ["B04", "B08", "--tile-size", "32", "-b", "arch:vit_tiny?depth=1&seed=0&layerscale_init=1.0&bands=4"]
    argv += ["-o", str(out), "--size", "2", "--clusters", "2", "--dedup", "1.01", "--no-progress", "--qa-band", "QA60"]
    return cli.main(argv)


def test_curate_warns_when_qa60_is_empty(tmp_path):
    with pytest.warns(UserWarning, match=r"source source0: its QA60 band flags no cloud in any of its 4 tiles"):
        assert _curate(_scene(tmp_path, np.zeros((32, 128), np.uint16)), tmp_path / "a") == 0


def test_curate_is_silent_when_qa60_flags_a_cloud(tmp_path, recwarn):
    qa = np.zeros((32, 128), np.uint16)
    qa[:4, :4] = 1 << 10  # one opaque-cloud patch in tile 0
    assert _curate(_scene(tmp_path, qa), tmp_path / "b") == 0
    assert not [w for w in recwarn if "QA60" in str(w.message)]
