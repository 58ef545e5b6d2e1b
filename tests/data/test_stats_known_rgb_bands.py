"""`data stats` of files whose band descriptions are a built-in sensor's bands (a Sentinel-2 export's B01..B12,
without --sensor) wrote a sensor YAML without `rgb_bands`, so `data preview` warned that it names no RGB bands and
drew B01, B02, B03 (coastal, blue, green) as red, green, blue. The YAML now names the sensor's RGB bands among the
file's; band names that built-in sensors read as different bands name none (a guess would draw the wrong ones)."""

from __future__ import annotations

import warnings

import numpy as np
import yaml

from geodino.data.band_names import known_rgb_bands
from geodino.data.config import DataConfig, SourceConfig
from geodino.data.preview import write_preview
from geodino.data.stats import write_stats
from tests.helpers import write_tif

S2 = ["B01", "B02", "B03", "B04", "B05", "B06", "B07", "B08", "B8A", "B09", "B11", "B12"]


def test_an_s2_named_file_gets_the_sensors_rgb_bands_and_a_quiet_preview(tmp_path):
    data = np.random.default_rng(0).integers(1, 4000, (12, 64, 64)).astype("uint16")
    tif = write_tif(tmp_path / "s2.tif", data, descriptions=S2)
    out = write_stats([str(tif)], tmp_path / "my_s2.yaml", name="my_s2", tile_size=32)
    record = yaml.safe_load(out.read_text())
    assert record["bands"] == S2 and record["rgb_bands"] == ["B04", "B03", "B02"]
    cfg = DataConfig(sources=[SourceConfig(type="raster", paths=[str(tif)], sensor=str(out), tile_size=64)])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        write_preview(cfg, tmp_path / "p.png", samples=1)
    assert not [w for w in seen if "RGB bands" in str(w.message)], [str(w.message) for w in seen]


def test_rgb_bands_only_where_the_sensors_knowing_the_names_agree():
    assert known_rgb_bands(["SR_B2", "SR_B3", "SR_B4", "SR_B5", "SR_B6", "SR_B7"]) == ("SR_B4", "SR_B3", "SR_B2")
    assert known_rgb_bands(["B02", "B03", "B04", "DEM"]) == ("B04", "B03", "B02")  # a name none knows is kept aside
    assert known_rgb_bands(["B2", "B3", "B4", "B5"]) is None  # blue..red in landsat8 and S2, green..nir in landsat7
    assert known_rgb_bands(["B01", "B02", "B03"]) is None  # S2 bands without red
    assert known_rgb_bands(["b1", "b2", "b3", "b4"]) is None  # positions say nothing
    assert known_rgb_bands([f"b{i}" for i in range(1, 13)]) is None  # only Sentinel-2 reads b1..b12: still positions
    assert known_rgb_bands(["b2", "b3", "b4", "b8", "b11"]) is None  # some of them, picked: positions too


def test_an_unnamed_file_gets_no_rgb_bands_from_its_positions(tmp_path):
    """A 6-band uint16 file without descriptions (b1..b6) was given rgb_bands [b4, b3, b2]: Sentinel-2's
    numbering guessed for any stack of six or more bands (fewer: Landsat 7 disagreed, so none)."""
    data = np.random.default_rng(0).integers(1, 4000, (6, 32, 32)).astype("uint16")
    tif = write_tif(tmp_path / "six.tif", data)
    record = yaml.safe_load(write_stats([str(tif)], tmp_path / "six.yaml", tile_size=32).read_text())
    assert record["bands"] == [f"b{i}" for i in range(1, 7)] and not record.get("rgb_bands")
