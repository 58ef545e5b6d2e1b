"""A colour-infrared product (NAIP's CIR: near infrared, red, green, 8-bit, which GDAL tags red, green, blue) read
with a sensor of another band count that names a band no colour is (`naip`: R, G, B, N): its colour tags named its
bands, so `bands: [R, G]` read its bands 1 and 2, the near infrared and the red, without a word. Such a pick by colour
name is now refused in one line (`colour_bands.guessed_colour_pick`); by position it reads as before."""

from __future__ import annotations

import types
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.errors import GeoDinoError, InputError


def _cir(path: Path, dtype: str = "uint8") -> tuple[Path, np.ndarray]:
    data = np.stack([np.full((32, 32), v, dtype) for v in (200, 50, 90)])  # near infrared, red, green
    profile = dict(driver="GTiff", width=32, height=32, count=3, dtype=dtype, photometric="RGB", crs="EPSG:26915")
    with rasterio.open(path, "w", transform=from_origin(500000, 4e6, 0.6, 0.6), **profile) as dst:
        dst.write(data)
    return path, data


def test_a_source_refuses_a_colour_name_pick_of_a_cir_file_and_reads_it_by_position(tmp_path: Path) -> None:
    from geodino.data.archive import RasterArchive

    path, data = _cir(tmp_path / "cir.tif")
    for asked in (["R", "G"], ["red", "green"]):
        with pytest.raises(InputError) as err:
            RasterArchive([str(path)], sensor="naip", bands=asked, progress=False)
        said = str(err.value)
        assert said.startswith(f"raster {path}: {asked[0]!r} would read its band 1 by its colour tag (red), but red, ")
        assert "the sensor's 4 bands include N, so its 3 bands may be any 3 of them" in said
        assert said.endswith("name its bands in order with `band_names:` (e.g. [N, R, G] or [R, G, B]) or pick them "
                             "by position (b1, b2, b3)") and "\n" not in said  # fmt: skip
    archive = RasterArchive([str(path)], sensor="naip", bands=["b1", "b2"], progress=False)
    got, _ = archive.read(0, 0, 0, 8, 8)
    np.testing.assert_array_equal(got, data[:2, :8, :8])
    named = RasterArchive([str(path)], sensor="naip", band_names=["N", "R", "G"], bands=["R", "G"], progress=False)
    np.testing.assert_array_equal(named.read(0, 0, 0, 8, 8)[0], data[1:3, :8, :8])  # red and green, by name


def test_embed_bands_refuses_it_too_and_says_the_numbers(tmp_path: Path) -> None:
    from geodino.data.sensors import get_sensor
    from geodino.embed.command_flags import _band_numbers_of

    path, _ = _cir(tmp_path / "cir.tif")
    cfg = types.SimpleNamespace(variable=None, time=None, sensor="naip")
    with pytest.raises(GeoDinoError) as err:
        _band_numbers_of(str(path), ["R", "G"], get_sensor("naip"), cfg)
    assert str(err.value).endswith("pick them by number (--bands 1,2,3)"), str(err.value)
    assert _band_numbers_of(str(path), ["b1", "b3"], get_sensor("naip"), cfg) == [1, 3]


def test_written_colour_tags_and_no_sensor_still_name_the_bands(tmp_path: Path) -> None:
    """A uint16 file's colour tags are someone's (GDAL writes none by default there), and without a sensor the tags
    are all there is: both are read by colour name as before."""
    from geodino.data.archive import RasterArchive

    path, data = _cir(tmp_path / "rgb16.tif", "uint16")
    got, _ = RasterArchive([str(path)], sensor="naip", bands=["R", "G"], progress=False).read(0, 0, 0, 8, 8)
    np.testing.assert_array_equal(got, data[:2, :8, :8])
    from geodino.data.archive_bands import _file_band_names, _resolve_bands

    path, _ = _cir(tmp_path / "rgb8.tif")
    with rasterio.open(path) as src:
        names = _file_band_names(src, None)
    assert _resolve_bands(str(path), names, ["red", "green"], None) == (("red", "green"), (1, 2))
