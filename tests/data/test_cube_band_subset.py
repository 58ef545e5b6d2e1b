"""docs/data.md (datacubes): a store whose band coordinate names only some of the sensor's bands reads those in
the sensor's order (the source's sensor narrowed to them); band names mixing the sensor's with others, or naming one
twice, are refused in one line. The docs said a store naming some but not all of the sensor's bands was refused."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.cubes import CubeSource, open_cube
from geodino.data.sensors import get_sensor
from geodino.errors import InputError
from tests.data.conftest import band_cube
from tests.helpers import write_zarr3


def _store(tmp_path, names):
    data = np.stack([np.full((8, 8), 1000 * (i + 1), "uint16") for i in range(len(names))])
    path = tmp_path / "cube.zarr"
    write_zarr3(band_cube(data, names), path)
    return str(path)


def test_some_of_the_sensors_bands_are_read_in_its_order(tmp_path):
    src = CubeSource([_store(tmp_path, ["B08", "B04", "B03", "B02"])], sensor="sentinel2_l2a", tile_size=8)
    assert list(src.band_names) == ["B02", "B03", "B04", "B08"] and src.sensor.bands == ("B02", "B03", "B04", "B08")
    image = src.get(0, 0)["image"]
    np.testing.assert_allclose(image[:, 0, 0], [0.4, 0.3, 0.2, 0.1], rtol=1e-6)  # B02 was stored last (4000 DN)


@pytest.mark.parametrize(
    ("names", "why"), [(["B02", "B03", "foo"], "foo not the sensor's"), (["B02", "B02"], "B02 named twice")]
)
def test_mixed_or_repeated_names_are_refused(names, why):
    import xarray as xr

    da = xr.DataArray(np.zeros((len(names), 4, 4), "uint16"), dims=("band", "y", "x"), coords={"band": names})
    with pytest.raises(InputError, match=rf"has bands .* but sensor 'sentinel2_l2a' has .*\({why}\)"):
        open_cube(da.rename("d"), sensor=get_sensor("sentinel2_l2a"), require_crs=False, warn_unplaced=False)


def test_a_picked_band_the_sensor_lacks_is_named(tmp_path):
    """`bands: [B04, QA]` under a sensor without QA was told to "select bands or use a matching sensor" (it had);
    the line names the band the sensor lacks."""
    path = _store(tmp_path, ["B04", "B08", "QA"])
    with pytest.raises(InputError) as err:
        CubeSource([path], sensor="sentinel2_l2a", bands=["B04", "QA"], tile_size=8)
    text = str(err.value)
    assert "\n" not in text and f"datacube {path} gives 2 bands (B04, QA)" in text
    assert "band 'QA' is not a band of sensor 'sentinel2_l2a'" in text and "select bands the sensor has" in text
