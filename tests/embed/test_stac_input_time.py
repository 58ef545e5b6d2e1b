"""A feature raster of one date of a datacube (`--time`) carries that date as its STAC item's `datetime` (was the
time the raster was written, so a time series of feature rasters could not be searched by date), and so does one of
a raster whose header records its acquisition time (GDAL's IMAGERY ACQUISITIONDATETIME; was the write time, which a
GIS user reads as the acquisition time); other inputs keep the write time, and `geodino:datetime_source` says which
one the item holds."""

from __future__ import annotations

import json

import pytest
from rasterio import open as rasterio_open

from geodino import cli
from geodino.embed.stac_items import _input_datetime
from tests import helpers
from tests.embed.conftest import random_image
from tests.embed.test_cube_time import SPEC, _cube


def test_a_cube_date_is_the_items_datetime(tmp_path, capsys):
    store, _ = _cube(tmp_path / "ts.zarr")
    out = tmp_path / "f.tif"
    argv = ["embed", store, "-b", SPEC, "--out", str(out), "--tile", "32", "--overlap", "0", "--no-progress"]
    assert cli.main([*argv, "--time", "1"]) == 0, capsys.readouterr().err
    props = json.loads((tmp_path / "f.stac.json").read_text())["properties"]
    assert props["geodino:input_time"] == "2024-02-01T10:32:11"
    assert props["datetime"] == "2024-02-01T10:32:11Z" and props["created"] != props["datetime"]
    assert props["geodino:datetime_source"] == "input"


def _embedded(tmp_path, capsys, acquired=None, tiff_time=None):
    """The STAC item properties of a raster's features; `acquired`: its IMAGERY ACQUISITIONDATETIME, `tiff_time`:
    its TIFFTAG_DATETIME (the time a TIFF was written)."""
    import rasterio

    src = helpers.write_tif(tmp_path / "in.tif", random_image(32, 32))
    with rasterio.open(src, "r+") as dst:
        if acquired:
            dst.update_tags(ns="IMAGERY", ACQUISITIONDATETIME=acquired)
        if tiff_time:
            dst.update_tags(TIFFTAG_DATETIME=tiff_time)
    argv = ["embed", str(src), "-b", SPEC, "--out", str(tmp_path / "f.tif"), "--tile", "32", "--overlap", "0"]
    assert cli.main([*argv, "--no-progress"]) == 0, capsys.readouterr().err
    return _item(tmp_path)["properties"]


def _item(folder):
    return json.loads((folder / "f.stac.json").read_text())


def test_a_raster_keeps_the_write_time_and_says_so(tmp_path, capsys):
    # TIFFTAG_DATETIME is when the file was written (often processing): not an acquisition time
    props = _embedded(tmp_path, capsys, tiff_time="2019:05:04 03:02:01")
    assert "geodino:input_time" not in props and props["datetime"] == props["created"]
    assert props["geodino:datetime_source"] == "created"


def test_a_rasters_acquisition_time_is_the_items_datetime(tmp_path, capsys):
    props = _embedded(tmp_path, capsys, acquired="2021-06-03 10:31:07")
    assert props["geodino:input_time"] == "2021-06-03T10:31:07"
    assert props["datetime"] == "2021-06-03T10:31:07Z" and props["geodino:datetime_source"] == "input"
    with rasterio_open(tmp_path / "f.tif") as out:  # recorded in the raster too, as a cube's date is
        assert out.tags()["GEODINO_INPUT_TIME"] == "2021-06-03T10:31:07"


def test_items_dated_either_way_are_valid_stac(tmp_path, capsys):
    pytest.importorskip("jsonschema")  # pystac validates with it, against the STAC core schemas it ships (offline)
    from pystac.validation import validate_dict

    for folder, acquired in (("created", None), ("input", "2021-06-03 10:31:07")):
        (tmp_path / folder).mkdir()
        assert _embedded(tmp_path / folder, capsys, acquired=acquired)["geodino:datetime_source"] == folder
        item = _item(tmp_path / folder)
        validate_dict(dict(item, stac_extensions=[]))  # the core Item schema (datetime required); no extension


@pytest.mark.parametrize(
    ("label", "stac"),
    [
        ("2024-02-01", "2024-02-01T00:00:00Z"),
        ("2024-02-01T10:32:11.5", "2024-02-01T10:32:11.500000Z"),
        ("2024-02-01T10:32:11+02:00", "2024-02-01T08:32:11Z"),
        ("7", None),  # a numeric time coordinate: no date
        ("", None),
    ],
)
def test_input_datetime(label, stac):
    assert _input_datetime(label) == stac


def test_a_partial_output_recorded_without_the_acquisition_time_resumes(tmp_path):
    """A raster's acquisition time joins its run record (`time`, as a cube's date); a partial output an earlier
    version started, whose record lacks it, resumes as before."""
    import rasterio

    from geodino.embed import embed_raster
    from geodino.embed.workdir import PLAN_FILE, work_dir_for

    src = helpers.write_tif(tmp_path / "in.tif", random_image(64, 64))
    with rasterio.open(src, "r+") as dst:
        dst.update_tags(ns="IMAGERY", ACQUISITIONDATETIME="2021-06-03 10:31:07")
    out, opts = tmp_path / "o.tif", dict(tile=32, overlap=0, chunk=2, progress=False, threads=1)
    embed_raster(str(src), SPEC, out, world_size=2, rank=0, **opts)  # half the blocks: what a killed run leaves
    plan = work_dir_for(out) / PLAN_FILE
    record = json.loads(plan.read_text())
    assert not out.exists() and record["time"] == "2021-06-03T10:31:07"
    del record["time"]
    plan.write_text(json.dumps(record))
    embed_raster(str(src), SPEC, out, resume=True, **opts)
    with rasterio_open(out) as done:
        assert done.tags()["GEODINO_INPUT_TIME"] == "2021-06-03T10:31:07"
