"""Datacube band order by name: a store whose band coordinate names the sensor's bands in another order feeds each
band on the sensor's channel. A cube of the sensor's band count was read in the store's order and labelled with the
sensor's names (B08 fed as B02), and `build_sources`' cross-source order check saw the sensor's order, not the fed
one."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from geodino.data.config import DataConfig, SourceConfig
from geodino.data.cubes import CubeSource
from geodino.data.sensor_yaml import save_sensor_yaml
from geodino.data.sensors import get_sensor
from geodino.data.source_build import build_sources
from geodino.errors import ConfigError, InputError

S2 = get_sensor("sentinel2_l2a").select(["B02", "B03", "B04", "B08"])
DN = {"B02": 1000, "B03": 2000, "B04": 3000, "B08": 4000}  # one DN per band, so a band on another channel shows
T = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4650000.0)


def _store(tmp_path, names, values=None, name="cube.zarr"):
    """A 4-band Zarr cube (band, y, x) whose band coordinate is `names`; band i holds `values[i]` everywhere."""
    import rioxarray  # noqa: F401
    import xarray as xr

    values = values or [DN[b] for b in names]
    data = np.stack([np.full((32, 32), v, np.uint16) for v in values])
    coords = {"band": list(names), "y": T.f + (np.arange(32) + 0.5) * T.e, "x": T.c + (np.arange(32) + 0.5) * T.a}
    da = xr.DataArray(data, dims=("band", "y", "x"), coords=coords, name="reflectance").rio.write_crs("EPSG:32633")
    path = tmp_path / name
    da.to_dataset().to_zarr(path, zarr_format=2)
    return path


def _channels(src: CubeSource) -> list[float]:
    return [round(float(v), 6) for v in src.get(0, 0)["image"].reshape(4, -1).mean(1)]


WANT = [DN[b] * 1e-4 for b in S2.bands]


@pytest.mark.parametrize(
    "names",
    [["B08", "B04", "B03", "B02"], ["nir", "red", "green", "blue"], ["b08", "b04", "b03", "b02"]],
    ids=["reversed", "common-names", "lower-case"],
)
def test_a_cube_storing_the_bands_in_another_order_feeds_each_band_on_the_sensors_channel(tmp_path, names):
    values = [DN[S2.resolve_band(n)] for n in names]
    src = CubeSource(str(_store(tmp_path, names, values)), sensor=S2, tile_size=16, name="c")
    assert _channels(src) == pytest.approx(WANT)  # old code: B08's DN on B02's channel
    assert src.sensor.bands == S2.bands and src.band_names == list(S2.bands)
    assert src.get(0, 0)["bands"] == list(S2.bands)


def test_bands_picked_in_another_order_are_read_and_labelled_in_that_order(tmp_path):
    src = CubeSource(str(_store(tmp_path, S2.bands)), sensor=S2, bands=["B08", "B04", "B03", "B02"], tile_size=16)
    assert src.sensor.bands == ("B08", "B04", "B03", "B02")
    assert _channels(src) == pytest.approx(WANT[::-1])


def test_a_cube_lacking_a_sensor_band_is_refused_in_one_line(tmp_path):
    store = _store(tmp_path, ["B08", "B04", "B03", "B05"], [1, 2, 3, 4])
    with pytest.raises(InputError) as err:
        CubeSource(str(store), sensor=S2, tile_size=16)
    msg = str(err.value)
    assert "\n" not in msg
    assert str(store) in msg and "B08, B04, B03, B05" in msg and "B02, B03, B04, B08" in msg


def test_a_cube_naming_none_of_the_sensors_bands_is_read_positionally(tmp_path):
    src = CubeSource(str(_store(tmp_path, ["1", "2", "3", "4"], [10, 20, 30, 40])), sensor=S2, tile_size=16)
    assert src.sensor.bands == S2.bands
    assert _channels(src) == pytest.approx([0.001, 0.002, 0.003, 0.004])


def _source(tmp_path, name, store, **kw) -> SourceConfig:
    sensor = save_sensor_yaml(S2, tmp_path / "s2_4.yaml")
    return SourceConfig(name=name, type="cube", paths=[str(store)], sensor=str(sensor), tile_size=16, **kw)


def test_mixed_sources_of_cubes_in_different_orders_feed_each_band_on_one_channel(tmp_path):
    a = _source(tmp_path, "a", _store(tmp_path, S2.bands, name="a.zarr"))
    b = _source(tmp_path, "b", _store(tmp_path, ["B08", "B04", "B03", "B02"], name="b.zarr"))
    sources = build_sources(DataConfig(sources=[a, b]), progress=False)
    assert [s.sensor.bands for s in sources] == [S2.bands, S2.bands]
    assert [_channels(s) for s in sources] == [pytest.approx(WANT), pytest.approx(WANT)]


def test_cube_sources_picking_the_bands_in_different_orders_are_refused(tmp_path):
    store = _store(tmp_path, S2.bands)
    a = _source(tmp_path, "fwd", store, bands=["B02", "B03", "B04", "B08"])
    b = _source(tmp_path, "rev", store, bands=["B08", "B04", "B03", "B02"])
    with pytest.raises(ConfigError) as err:
        build_sources(DataConfig(sources=[a, b]), progress=False)
    msg = str(err.value)
    assert "\n" not in msg and "'fwd' and 'rev'" in msg and "B08, B04, B03, B02" in msg
