"""A raster without band descriptions whose colour interpretation names red, green and blue (GDAL's RGB GeoTIFF)
has those band names: `data stats` writes them (and `rgb_bands`), and a source's `bands:` matches them; a file
whose colour interpretation says nothing about its bands (grey, undefined) keeps b1..bN."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.colour_bands import colour_band_names
from geodino.data.stats import compute_stats


def _tif(path, colours: tuple[str, ...], dtype: str = "uint16"):
    import rasterio
    from rasterio.enums import ColorInterp
    from rasterio.transform import from_origin

    n = len(colours)
    data = (np.arange(n * 32 * 32).reshape(n, 32, 32) % 200 + 10).astype(dtype)
    data[:, :, :] += np.arange(n, dtype=dtype)[:, None, None] * 20  # each band its own level
    profile = {"driver": "GTiff", "width": 32, "height": 32, "count": n, "dtype": dtype, "crs": "EPSG:32633"}
    with rasterio.open(path, "w", transform=from_origin(500000, 4000000, 10, 10), **profile) as dst:
        dst.write(data)
        dst.colorinterp = [ColorInterp[c] for c in colours]
    return path, data


@pytest.mark.parametrize(
    ("colours", "names"),
    [
        (("red", "green", "blue"), ("red", "green", "blue")),
        (("blue", "green", "red"), ("blue", "green", "red")),  # in the file's order
        (("red", "green", "blue", "alpha"), ("red", "green", "blue", "alpha")),
        (("gray", "undefined", "undefined"), None),
        (("red", "red", "blue"), None),
        (("red", "green", "blue", "undefined"), None),  # a fourth band the interpretation does not name
    ],
)
def test_colour_names_only_when_they_name_red_green_and_blue_once(colours, names):
    assert colour_band_names(colours, len(colours)) == names


def test_stats_name_an_rgb_files_bands_and_its_rgb_bands(tmp_path):
    path, _ = _tif(tmp_path / "rgb.tif", ("red", "green", "blue"))
    sensor, _ = compute_stats([str(path)], samples=4, tile_size=16, scale=1e-4, progress=False)
    assert sensor.bands == ("red", "green", "blue") and sensor.rgb_bands == ("red", "green", "blue")
    grey, _ = _tif(tmp_path / "grey.tif", ("gray", "undefined", "undefined"))
    sensor, _ = compute_stats([str(grey)], samples=4, tile_size=16, scale=1e-4, progress=False)
    assert sensor.bands == ("b1", "b2", "b3") and sensor.rgb_bands is None


def test_a_source_reads_an_rgb_files_bands_by_colour_name(tmp_path):
    from geodino.data.archive import RasterArchive

    path, data = _tif(tmp_path / "bgr.tif", ("blue", "green", "red"))
    # a sensor of other bands (Sentinel-2: red is B04): the file's red and green are found by name
    archive = RasterArchive([str(path)], sensor="sentinel2_l2a", bands=["red", "green"], progress=False)
    got, _ = archive.read(0, 0, 0, 8, 8)
    np.testing.assert_array_equal(got, data[[2, 1], :8, :8])  # red is the file's band 3


def test_a_sensor_of_the_files_band_count_still_names_its_bands_by_position(tmp_path):
    """GDAL marks any 3-band 8-bit GeoTIFF RGB: read with a sensor of three bands, its bands are the sensor's."""
    from geodino.data.archive import RasterArchive
    from geodino.data.sensors import Sensor

    path, _ = _tif(tmp_path / "nrg.tif", ("red", "green", "blue"), dtype="uint8")
    nrg = Sensor("nrg", ("nir", "r", "g"), 1 / 255, (0.0,) * 3, (1.0,) * 3, False)
    archive = RasterArchive([str(path)], sensor=nrg, require_crs=False, progress=False)
    assert archive.band_names == ("nir", "r", "g")


def test_an_index_cache_written_before_colour_names_is_rebuilt(tmp_path):
    """A source's `index_cache` of the version before colour names (5) holds an RGB file's bands as b1, b2, b3: it
    is indexed again, so a cached run names them as an uncached one does (it kept b1..b3 and recorded them)."""
    import json

    from geodino.data.archive import RasterArchive

    path, _ = _tif(tmp_path / "rgb.tif", ("red", "green", "blue"))
    cache = tmp_path / "index.json"
    RasterArchive([str(path)], sensor="sentinel2_l2a", index_cache=cache, progress=False)
    stored = json.loads(cache.read_text())
    assert stored["scenes"][0]["band_names"] == ["red", "green", "blue"]
    stored["key"]["version"] = 5  # as the version before wrote it
    stored["scenes"][0]["band_names"] = ["b1", "b2", "b3"]
    cache.write_text(json.dumps(stored))
    archive = RasterArchive([str(path)], sensor="sentinel2_l2a", index_cache=cache, progress=False)
    assert sorted(archive.band_names) == ["blue", "green", "red"]  # in the sensor's order (B02, B03, B04)


def test_stats_with_a_sensor_of_other_bands_keeps_its_rgb_bands_by_the_files_colour_names(tmp_path):
    """`data stats rgb.tif --sensor naip` (R, G, B, N; red is R): the YAML's bands are the file's red, green, blue,
    and its rgb_bands were dropped (naip's R, G, B are not among them), so data preview warned of no RGB bands."""
    path, _ = _tif(tmp_path / "rgb.tif", ("red", "green", "blue"), dtype="uint8")
    sensor, _ = compute_stats([str(path)], sensor="naip", samples=4, tile_size=16, progress=False)
    assert sensor.bands == ("red", "green", "blue") and sensor.rgb_bands == ("red", "green", "blue")


def test_a_false_colour_file_refused_a_pick_by_the_sensors_names_is_told_its_colours_are_only_tags(tmp_path):
    """A 3-band uint8 CIR GeoTIFF (NIR, red, green) carries GDAL's default colour tags red, green, blue; naip's
    `bands: [N, R, G]` is refused (no band N), and the line now says those names are only tags and how to name the
    bands; following it (`band_names: [N, R, G]`) reads band 1 as naip's N."""
    from geodino.data.archive import RasterArchive
    from geodino.errors import InputError

    path, data = _tif(tmp_path / "cir.tif", ("red", "green", "blue"), dtype="uint8")
    with pytest.raises(InputError) as err:
        RasterArchive([str(path)], sensor="naip", bands=["N", "R", "G"], require_crs=False, progress=False)
    said = str(err.value)
    assert said.startswith(f"raster {path} has no band 'N' (its bands: red, green, blue); fix `bands:` or name")
    assert said.endswith(
        "; red, green, blue are only its colour tags (GDAL writes them on any 3- or 4-band 8-bit GeoTIFF, a "
        "false-colour one too): `sensor:` of 3 bands names its bands by position"
    ), said
    assert "\n" not in said
    archive = RasterArchive(
        [str(path)], sensor="naip", band_names=["N", "R", "G"], bands=["N", "R", "G"], require_crs=False, progress=False
    )
    got = archive.sample(0, 0, 0, 8, 8)["image"]
    np.testing.assert_allclose(got, data[:, :8, :8] / 255, rtol=1e-6)


def test_a_file_that_describes_its_bands_red_green_blue_is_not_told_they_are_only_colour_tags(tmp_path):
    """The tags-only note is for names read from GDAL's colour tags alone: a file whose band descriptions say red,
    green, blue names its bands itself (a sensor of its band count would not rename them), and a `band_names:`
    list is the user's own; a refused pick of either says no such thing (it did, before the note had one home)."""
    import rasterio

    from geodino.data.archive import RasterArchive
    from geodino.errors import InputError

    path, _ = _tif(tmp_path / "described.tif", ("red", "green", "blue"), dtype="uint8")
    with rasterio.open(path, "r+") as dst:
        for i, name in enumerate(("red", "green", "blue"), 1):
            dst.set_band_description(i, name)
    tagged, _ = _tif(tmp_path / "tagged.tif", ("red", "green", "blue"), dtype="uint8")
    for kwargs in ({"path": path}, {"path": tagged, "band_names": ["red", "green", "blue"]}):
        p = kwargs.pop("path")
        with pytest.raises(InputError) as err:
            RasterArchive([str(p)], sensor="naip", bands=["N"], require_crs=False, progress=False, **kwargs)
        said = str(err.value)
        assert said.startswith(f"raster {p} has no band 'N' (its bands: red, green, blue); fix `bands:`"), said
        assert "colour tags" not in said, said
