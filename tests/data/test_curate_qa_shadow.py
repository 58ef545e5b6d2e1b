"""`curate --qa-shadow`: the qa cloud rule also counts cloud shadow (Sentinel-2 SCL class 3, Landsat Collection 2
QA_PIXEL bit 4), opt-in; without it shadow stays ground, as before.

The expected masks are decoded here independently of `clouds._decode_qa`: every uint16 QA_PIXEL value's bits are
read from its binary string (USGS C2 QA_PIXEL: bit 0 fill, 1 dilated cloud, 2 cirrus, 3 cloud, 4 cloud shadow,
5 snow, 6 clear, 7 water), every SCL class from ESA's class table (3 cloud shadows, 8/9 cloud medium/high
probability, 10 thin cirrus, 11 snow). A curation of a 4-tile scene with one tile under SCL shadow drops it only
with --qa-shadow."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from geodino import cli
from geodino.data.curate.clouds import cloud_rule
from geodino.data.curate.config import CurateConfig
from geodino.data.sensors import Sensor, get_sensor
from geodino.errors import ConfigError

SCL_NAMES = {
    0: "no data",
    1: "saturated or defective",
    2: "dark area pixels",
    3: "cloud shadows",
    4: "vegetation",
    5: "not vegetated",
    6: "water",
    7: "unclassified",
    8: "cloud medium probability",
    9: "cloud high probability",
    10: "thin cirrus",
    11: "snow",
}
QA_PIXEL_BITS = {0: "fill", 1: "dilated cloud", 2: "cirrus", 3: "cloud", 4: "cloud shadow", 5: "snow", 6: "clear"}


def _sensor(bands, scale=1.0) -> Sensor:
    n = len(bands)
    return Sensor("t", tuple(bands), scale, (0.1,) * n, (0.1,) * n, False)


def _flags(value: int) -> set[str]:
    """The QA_PIXEL flags set in `value`, read from its binary string (bit 0 is the last character)."""
    text = format(int(value), "016b")[::-1]
    return {name for bit, name in QA_PIXEL_BITS.items() if text[bit] == "1"}


def test_qa_pixel_shadow_bit_against_an_independent_decode():
    values = np.arange(1 << 16, dtype=np.int64)  # every uint16 code once
    flags = [_flags(v) for v in values]
    cloud = np.array([bool(f & {"dilated cloud", "cirrus", "cloud"}) for f in flags])
    shadow = np.array([bool(f & {"cloud shadow"}) for f in flags])
    q = _sensor(["SR_B2", "SR_B3", "SR_B4", "QA_PIXEL"])
    img = np.zeros((4, 1, values.size), np.float32)
    img[3, 0] = values
    plain = cloud_rule(q, "qa").mask(img)[0]
    with_shadow = cloud_rule(q, "qa", shadow=True).mask(img)[0]
    assert np.array_equal(plain, cloud)  # default unchanged: shadow alone is not cloud
    assert np.array_equal(with_shadow, cloud | shadow)
    assert int((with_shadow & ~plain).sum()) == 1 << 12  # bit 4 set, bits 1-3 clear: 2^16 / 2^4 codes
    snow_only = 1 << 5
    assert not with_shadow[snow_only] and not with_shadow[(1 << 6) | 1]  # snow; clear + fill: ground, not cloud


def test_scl_shadow_class_against_esa_table():
    s = _sensor(["B02", "B03", "B04", "SCL"], scale=1e-4)
    codes = np.arange(0, 12)
    img = np.zeros((4, 1, codes.size), np.float32)
    img[3, 0] = codes * 1e-4  # as a source gives it: the sensor's scale applied
    expect_cloud = [
        ("cloud" in SCL_NAMES[c] or "cirrus" in SCL_NAMES[c]) and "shadow" not in SCL_NAMES[c] for c in codes
    ]
    expect_shadow = [SCL_NAMES[c] == "cloud shadows" for c in codes]
    assert cloud_rule(s).mask(img)[0].tolist() == expect_cloud
    got = cloud_rule(s, shadow=True).mask(img)[0].tolist()
    assert got == [a or b for a, b in zip(expect_cloud, expect_shadow)]
    assert [int(c) for c in codes[got]] == [3, 8, 9, 10]  # not 2 (dark area), not 11 (snow)


def test_screening_only_qa_band_decodes_shadow_too():
    rule = cloud_rule(get_sensor("sentinel2_l2a"), "auto", qa_band=("QA_PIXEL", "qa_pixel"), shadow=True)
    raw = np.array([[1 << 4, 1 << 3, 1 << 6]], np.uint16)  # shadow, cloud, clear
    assert rule.mask(np.zeros((1, 1, 3), np.float32), raw).tolist() == [[True, True, False]]
    assert "with cloud shadow" in rule.describe()
    assert "shadow" not in cloud_rule(get_sensor("sentinel2_l2a"), qa_band=("SCL", "scl")).describe()


def test_shadow_refused_where_no_rule_can_tell_it():
    q60 = _sensor(["B02", "B03", "B04", "QA60"])
    with pytest.raises(ConfigError, match=r"--qa-shadow: the QA60 band .* no cloud-shadow flag"):
        cloud_rule(q60, shadow=True)
    with pytest.raises(ConfigError, match=r"--qa-shadow: --qa-band Q .* QA60"):
        cloud_rule(get_sensor("sentinel2_l2a"), qa_band=("Q", "qa60"), shadow=True)
    with pytest.raises(ConfigError, match=r"--qa-shadow: sensor 'sentinel2_l2a' is screened by the swir rule"):
        cloud_rule(get_sensor("sentinel2_l2a"), shadow=True)
    cfg = CurateConfig(paths=["x"], backbone="arch:vit_tiny", size=1, cloud_rule="rgb", qa_shadow=True)
    with pytest.raises(ConfigError, match=r"--qa-shadow .* not --cloud-rule rgb"):
        cfg.validate()


def _scene(tmp_path):
    """4 tiles of 32 px in a row; SCL 4 (vegetation) except tile 1 (class 3, cloud shadow) and tile 3 (class 9)."""
    import rasterio

    from tests.embed.conftest import write_tif

    rng = np.random.default_rng(0)
    data = np.zeros((5, 32, 128), np.uint16)
    data[:4] = rng.integers(300, 2000, (4, 32, 128))  # textured, dark: no spectral rule calls it cloud
    data[4] = 4
    data[4, :, 32:64] = 3
    data[4, :, 96:128] = 9
    path = write_tif(tmp_path / "s2.tif", data, nodata=0)
    with rasterio.open(path, "r+") as ds:
        ds.descriptions = ("B02", "B03", "B04", "B08", "SCL")
    return path


def _curate(tif, out, *extra):
    argv = ["data", "curate", str(tif), "--type", "raster", "--sensor", "sentinel2_l2a", "--bands", "B02", "B03"]
    argv += ["B04", "B08", "--tile-size", "32", "-b", "arch:vit_tiny?depth=1&seed=0&layerscale_init=1.0&bands=4"]
    argv += ["-o", str(out), "--size", "2", "--clusters", "2", "--dedup", "1.01", "--no-progress", "--qa-band", "SCL"]
    assert cli.main([*argv, *extra]) == 0
    return json.loads((out / "report.json").read_text()), pd.read_parquet(out / "tiles.parquet").sort_values("col")


def test_curate_drops_shadowed_tile_only_with_qa_shadow(tmp_path):
    tif = _scene(tmp_path)
    report, tiles = _curate(tif, tmp_path / "plain")
    assert tiles.cloud_share.tolist() == [0.0, 0.0, 0.0, 1.0] and report["removed"]["cloud"] == 1
    report, tiles = _curate(tif, tmp_path / "shadow", "--qa-shadow")
    assert tiles.status.tolist() == ["kept", "cloud", "kept", "cloud"]
    assert tiles.cloud_share.tolist() == [0.0, 1.0, 0.0, 1.0]
    assert report["config"]["qa_shadow"] is True and "with cloud shadow" in next(iter(report["cloud_rules"].values()))
