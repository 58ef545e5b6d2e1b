"""Messages that quote a library's error keep its later lines, folded into one: the data tools kept only the first
line ("Read failed. See previous exception for details."), dropping the file and reason GDAL put on the next one,
and a YAML error's first line ("while parsing a flow sequence") said neither where nor what."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.errors import RasterioIOError

from geodino.data.archive import RasterArchive
from geodino.data.sensor_yaml import load_sensor_yaml
from geodino.data.vrt import stack_bands, stack_files_xml
from geodino.data.vrt_mosaic import mosaic_vrt
from geodino.errors import ConfigError, InputError, one_line

from .conftest import write_tif

TWO_LINES = "Read failed. See previous exception for details.\n  b07.tif: TIFFReadDirectory: failed at offset 8"
FOLDED = "Read failed. See previous exception for details. b07.tif: TIFFReadDirectory: failed at offset 8"


def _unreadable(monkeypatch, exc: BaseException | None = None) -> None:
    """rasterio.open raises `exc` (a RasterioIOError of two lines): the second names the file and the reason."""

    def fail(*args, **kwargs):
        raise exc or RasterioIOError(TWO_LINES)

    monkeypatch.setattr(rasterio, "open", fail)


def test_one_line_folds_every_line_and_names_the_type_of_a_blank_error():
    assert one_line(RasterioIOError(TWO_LINES)) == FOLDED
    assert one_line(ImportError("\nA module compiled with NumPy 1.x\ncannot run in NumPy 2")) == (
        "A module compiled with NumPy 1.x; cannot run in NumPy 2"
    )
    assert one_line(ValueError("  \n")) == "ValueError"
    assert one_line(ValueError("a" * 50 + "\nb"), 20) == "a" * 17 + "..."


@pytest.mark.parametrize(
    "call",
    [
        lambda tmp: stack_bands({"B04": tmp / "b04.tif"}, tmp / "s.vrt"),
        lambda tmp: stack_files_xml([("B04", str(tmp / "b04.tif"))]),
        lambda tmp: mosaic_vrt([tmp / "b04.tif"], tmp / "m.vrt"),
    ],
    ids=["stack_bands", "stack_files_xml", "mosaic_vrt"],
)
def test_vrt_refusals_quote_gdal_s_second_line(tmp_path, monkeypatch, call):
    write_tif(tmp_path / "b04.tif", np.ones((1, 4, 4), "uint16"))
    _unreadable(monkeypatch)
    with pytest.raises(InputError) as err:
        call(tmp_path)
    assert FOLDED in str(err.value) and "\n" not in str(err.value)


def test_archive_skip_reason_quotes_the_second_line(tmp_path, monkeypatch):
    path = write_tif(tmp_path / "a.tif", np.ones((1, 4, 4), "uint16"))
    _unreadable(monkeypatch, OSError(TWO_LINES))  # not a read error GDAL words as truncation: quoted as it is
    with pytest.raises(InputError, match=r"^raster .*a\.tif: cannot be read \(OSError: Read failed\. .* b07\.tif: "):
        RasterArchive(path, uniform=False, require_crs=False, progress=False)


def test_footprint_reasons_quote_the_second_line(tmp_path, monkeypatch):
    from rasterio.crs import CRS
    from shapely.geometry import box

    from geodino.data import footprints, valid_footprint

    path = write_tif(tmp_path / "a.tif", np.ones((1, 4, 4), "uint16"))
    scene = RasterArchive(path, uniform=False, require_crs=False, progress=False).scenes[0]

    def no_operation(*args, **kwargs):
        raise RasterioIOError("PROJ: proj_create_operations failed\nno operation from EPSG:32633 to EPSG:3857")

    monkeypatch.setattr("rasterio.warp.transform_geom", no_operation)
    geom, why = footprints._project(box(0, 0, 1, 1), CRS.from_epsg(32633), CRS.from_epsg(3857))
    assert geom is None and why.endswith(
        "(PROJ: proj_create_operations failed; no operation from EPSG:32633 to EPSG:3857)"
    )
    _unreadable(monkeypatch)
    geom, why = valid_footprint.valid_footprint(scene)
    assert geom is None and why == f"its valid pixels could not be read (RasterioIOError: {FOLDED})"


def test_sensor_yaml_says_where_and_what(tmp_path):
    bad = tmp_path / "s.yaml"
    bad.write_text("name: x\nbands: [a, b\nscale: 1\n")
    with pytest.raises(ConfigError) as err:
        load_sensor_yaml(bad)
    assert str(err.value) == (
        f"sensor file {bad} is not valid YAML at line 3, column 6: expected ',' or ']', but got ':' "
        "(while parsing a flow sequence started at line 2, column 8)"
    )
