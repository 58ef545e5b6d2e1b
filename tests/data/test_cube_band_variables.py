"""Datacubes storing one variable per band (B02, B03, ... each a (y, x) array) are stacked by variable name in the
sensor's order, as rasters are read by band description; before, only `bands:` stacked them and without it one
variable was read as a single band ('gives 1 band (b1)'). And stores of one cube source are compared by band name:
a count alone let a B02,B03,B04,B05 store be fed as B02,B03,B04,B08."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.cubes import CubeSource
from geodino.data.sensors import get_sensor
from geodino.errors import InputError
from tests.data.test_cube_band_order import DN, S2, WANT, T, _channels, _store


def _per_band_store(tmp_path, variables, values=None, name="per_band.zarr"):
    """A Zarr store with one (y, x) uint16 variable per name in `variables` (in that order), each holding one DN."""
    import rioxarray  # noqa: F401
    import xarray as xr

    values = values or [DN[S2.resolve_band(v)] for v in variables]
    coords = {"y": T.f + (np.arange(32) + 0.5) * T.e, "x": T.c + (np.arange(32) + 0.5) * T.a}
    data = {v: (("y", "x"), np.full((32, 32), dn, np.uint16)) for v, dn in zip(variables, values, strict=True)}
    ds = xr.Dataset(data, coords=coords).rio.write_crs("EPSG:32633")
    path = tmp_path / name
    ds.to_zarr(path, zarr_format=2)
    return path


@pytest.mark.parametrize(
    "variables",
    [["B08", "B04", "B03", "B02"], ["nir", "red", "green", "blue"], ["b02", "b03", "b04", "b08"]],
    ids=["reversed", "common-names", "lower-case"],
)
def test_one_variable_per_band_is_stacked_in_the_sensors_order_without_bands(tmp_path, variables):
    src = CubeSource(str(_per_band_store(tmp_path, variables)), sensor=S2, tile_size=16)
    assert _channels(src) == pytest.approx(WANT)  # old code: InputError 'gives 1 band (b1)'
    assert src.band_names == list(S2.bands) and src.sensor.bands == S2.bands


def test_bands_may_name_per_band_variables_by_common_name(tmp_path):
    src = CubeSource(str(_per_band_store(tmp_path, S2.bands)), sensor=S2, bands=["nir", "red"], tile_size=16)
    image = src.get(0, 0)["image"]
    assert [round(float(v), 6) for v in image.reshape(2, -1).mean(1)] == pytest.approx([0.4, 0.3])
    assert src.sensor.bands == ("B08", "B04")


def test_per_band_variables_naming_some_sensor_bands_are_read_as_those_bands(tmp_path):
    """As a band coordinate naming some of the sensor's bands: those, in the sensor's order (a QA variable left
    out); two variables naming one band are refused in one line."""
    path = _per_band_store(tmp_path, ["B08", "SCL", "B03"], values=[4000, 4, 2000])
    src = CubeSource(str(path), sensor=S2, tile_size=16)
    assert src.sensor.bands == ("B03", "B08") and src.band_names == ["B03", "B08"]
    assert [round(float(v), 6) for v in src.get(0, 0)["image"].reshape(2, -1).mean(1)] == pytest.approx([0.2, 0.4])
    twice = _per_band_store(tmp_path, ["B08", "nir", "B03"], values=[4000, 4000, 2000], name="twice.zarr")
    with pytest.raises(InputError, match=r"holds one variable per band \(B03, B08, nir\) but B08 and nir name the "):
        CubeSource(str(twice), sensor=S2, tile_size=16)


def test_unnamed_single_band_variables_say_to_pass_bands(tmp_path):
    path = _per_band_store(tmp_path, ["v1", "v2", "v3", "v4"], values=[1000, 2000, 3000, 4000])
    with pytest.raises(InputError, match=r"holds 4 single-band variables \(v1, v2, v3, v4\) whose names are not"):
        CubeSource(str(path), sensor=S2, tile_size=16)
    src = CubeSource(str(path), sensor=S2, bands=["v1", "v2", "v3", "v4"], band_names=None, tile_size=16)
    assert len(src.band_names) == 4


def test_stores_of_one_source_giving_other_bands_of_the_same_count_are_refused(tmp_path):
    s2 = get_sensor("sentinel2_l2a")
    a = _store(tmp_path, ["B02", "B03", "B04", "B08"], name="a.zarr")
    b = _store(tmp_path, ["B02", "B03", "B04", "B05"], values=[1000, 2000, 3000, 5000], name="b.zarr")
    with pytest.raises(InputError, match=r"b.zarr gives bands B02, B03, B04, B05 but .*a.zarr gives B02, B03, B04, "):
        CubeSource([str(a), str(b)], sensor=s2, tile_size=16)  # old code: B05 fed as B08
    c = _store(tmp_path, ["B08", "B04", "B03", "B02"], name="c.zarr")  # the same bands in another order: one source
    src = CubeSource([str(a), str(c)], sensor=s2, tile_size=16)
    assert src.band_names == ["B02", "B03", "B04", "B08"]
