"""A source's band selection on a colour-named file (GDAL's RGB GeoTIFF, bands red, green, blue without
descriptions): two names that pick one band are refused, and a sensor that names the file's colours in another
order (the YAML `data stats --bands blue,green,red` writes) reads them by name, not by position."""

from __future__ import annotations

import re

import numpy as np
import pytest

from geodino.errors import InputError
from tests.data.test_colour_band_names import _tif


@pytest.fixture
def rgb(tmp_path):
    return _tif(tmp_path / "rgb.tif", ("red", "green", "blue"), "uint8")


@pytest.mark.parametrize(
    ("bands", "said"),
    [
        (["b1", "red", "green"], "`bands:` b1 and red are both band 1 (red) of raster {}; "),
        (["red", "red", "green"], "`bands:` names red twice (band 1 of raster {}); "),
    ],
)
def test_two_names_of_one_band_are_refused(rgb, bands, said):
    from geodino.data.archive import RasterArchive

    path, _ = rgb
    with pytest.raises(InputError, match="^" + re.escape(said.format(path))) as err:
        RasterArchive([str(path)], bands=bands, progress=False)
    assert "\n" not in str(err.value) and str(err.value).endswith("name each band once")


def test_a_stats_yaml_of_reordered_colours_reads_them_by_name(rgb, tmp_path):
    from geodino.data.archive import RasterArchive
    from geodino.data.stats import write_stats

    path, data = rgb
    yaml = write_stats([str(path)], tmp_path / "bgr.yaml", bands=["blue", "green", "red"], samples=4, tile_size=16,
                       progress=False)  # fmt: skip
    archive = RasterArchive([str(path)], sensor=str(yaml), progress=False)
    got, _ = archive.read(0, 0, 0, 8, 8)
    # the sensor's first band, blue, is the file's band 3 (before: band 1, red, read as blue by position)
    np.testing.assert_array_equal(got, data[[2, 1, 0], :8, :8])
    assert archive.band_names == ("blue", "green", "red")


def test_a_false_colour_sensor_still_reads_an_rgb_tagged_file_by_position(rgb, tmp_path):
    from geodino.data.archive import RasterArchive
    from geodino.data.sensors import get_sensor
    from geodino.data.stats import write_stats

    path, data = rgb  # GDAL tags any 3-band 8-bit GeoTIFF RGB: here it holds nir, r, g
    yaml = write_stats([str(path)], tmp_path / "cir.yaml", band_names=["nir", "r", "g"], samples=4, tile_size=16,
                       progress=False)  # fmt: skip
    archive = RasterArchive([str(path)], sensor=str(yaml), progress=False)
    assert get_sensor(str(yaml)).bands == ("nir", "r", "g")
    got, _ = archive.read(0, 0, 0, 8, 8)
    np.testing.assert_array_equal(got, data[:, :8, :8])
