"""GeoTIFFs named `.gtif`/`.gtiff` (any case, as GDAL users and older tools write them) are found in folders and
globs, read with rasterio as the `.tif` ones are, and decoded as TIFF chips (their bands kept) in image folders."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodino.data.paths import IMAGE_EXTS, RASTER_EXTS, resolve_paths
from tests.data.conftest import ramp, write_tif

SUFFIXES = (".tif", ".TIFF", ".gtif", ".GTIF", ".gtiff", ".GTiff")


@pytest.mark.parametrize("suffix", SUFFIXES)
def test_a_folder_and_a_glob_of_each_geotiff_suffix_are_found(tmp_path: Path, suffix: str) -> None:
    d = tmp_path / "scenes"
    (d / "sub").mkdir(parents=True)
    a = write_tif(d / f"a{suffix}", ramp(2, 16, 16))
    b = write_tif(d / "sub" / f"b{suffix}", ramp(2, 16, 16, seed=1))
    assert resolve_paths([d], RASTER_EXTS) == [str(a), str(b)]
    assert resolve_paths([str(d / f"*{suffix}")], RASTER_EXTS) == [str(a)]
    assert resolve_paths([d], IMAGE_EXTS, recursive=False, what="image") == [str(a)]


def test_a_gtif_archive_reads_like_a_tif_one(tmp_path: Path) -> None:
    from geodino.data.archive import RasterArchive
    from geodino.data.headers import read_header

    data = ramp(4, 40, 48)
    for sub in ("tif", "gtif"):
        (tmp_path / sub).mkdir()
    tif = write_tif(tmp_path / "tif" / "a.tif", data)
    gtif = write_tif(tmp_path / "gtif" / "a.GTiff", data)
    assert read_header(gtif).reader == "rasterio" and read_header(gtif).count == 4
    one, other = (RasterArchive([str(p.parent)], progress=False, uniform=False) for p in (tif, gtif))
    assert len(one) == len(other) == 1
    assert one.band_names == other.band_names and one.scenes[0].crs == other.scenes[0].crs


def test_a_gtif_chip_keeps_its_bands_and_16_bit_dn(tmp_path: Path) -> None:
    from geodino.data.images import decode_photo

    data = ramp(4, 16, 16)  # 16-bit DN above 255: a photo decode would make it 8-bit RGB
    path = write_tif(tmp_path / "chip.gtif", data, crs=None, nodata=None)
    arr, valid = decode_photo(path.read_bytes(), path.name, n_bands=4)
    assert arr.shape == (4, 16, 16) and arr.dtype == np.uint16
    np.testing.assert_array_equal(arr, data)
    assert valid is None


def test_band_files_named_gtif_make_a_scene(tmp_path: Path) -> None:
    from geodino.data.vrt import find_band_files

    (tmp_path / "S").mkdir()
    for band in ("B02", "B03"):
        write_tif(tmp_path / "S" / f"T33_{band}.gtif", ramp(1, 8, 8))
    found = find_band_files(tmp_path / "S", ["B02", "B03"])
    assert {b: Path(p).name for b, p in found.items()} == {"B02": "T33_B02.gtif", "B03": "T33_B03.gtif"}
