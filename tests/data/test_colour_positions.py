"""Positions (b1..bN) of a file whose colour interpretation names its bands (GDAL's RGB GeoTIFF) read as those
names: `bands: [b3, b1]` with the sensor YAML `data stats` writes for the file (red, green, blue) was refused, the
source naming the bands read b3, b1, which that YAML does not hold."""

from __future__ import annotations

import numpy as np

from geodino.data.stats import compute_stats
from tests.data.test_colour_band_names import _tif


def test_positions_read_as_the_files_colour_names_so_a_yaml_of_its_stats_matches(tmp_path):
    """`bands: [b3, b1]` (positions) of an RGB file with the sensor YAML `data stats` now writes for it (red, green,
    blue): the source named the bands read b3, b1, which that YAML's names do not hold, and refused the run ("give 2
    unnamed bands (b3, b1) but sensor ... has 3 (red, green, blue)"); b3 of this file is its blue band."""
    from geodino.data.archive import RasterArchive

    path, data = _tif(tmp_path / "rgb.tif", ("red", "green", "blue"))
    yaml_sensor, _ = compute_stats([str(path)], samples=4, tile_size=16, scale=1e-4, progress=False)
    archive = RasterArchive([str(path)], sensor=yaml_sensor, bands=["b3", "b1"], progress=False)
    assert archive.band_names == ("blue", "red")
    got, _ = archive.read(0, 0, 0, 8, 8)
    np.testing.assert_array_equal(got, data[[2, 0], :8, :8])
