"""`geodino data index`: a GeoTIFF whose pixel data is cut after an intact header (it opens without any GDAL
warning) is listed as skipped, "truncated or corrupt", under --on-error; it was counted as a healthy scene
("2 scenes, 0 skipped"). `data curate` keeps recording such a file's tiles as nodata (test_curate_skip_raster)."""

from __future__ import annotations

import warnings
from pathlib import Path

from geodino import cli
from tests.data.conftest import tif_folder


def archive(tmp_path: Path, cut: bool = True) -> tuple[Path, Path]:
    return tif_folder(tmp_path, 2, cut)  # the second of two files cut after its header


def test_a_file_cut_after_its_header_is_skipped_and_left_out_of_the_footprints(tmp_path, capsys) -> None:
    import geopandas as gpd

    folder, bad = archive(tmp_path)
    out = tmp_path / "fp.parquet"
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert cli.main(["data", "index", str(folder), "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("1 scene, 1 skipped"), text
    assert f"skipped {bad}: is truncated or corrupt" in text and "re-download or re-copy it" in text
    # the summary line is the one place the reason is given (a "skipping raster" warning said it a second time)
    assert [str(w.message) for w in seen if "skipping raster" in str(w.message)] == []
    assert list(gpd.read_parquet(out)["filepath"].map(lambda p: Path(p).name)) == ["t0.tif"]


def test_on_error_stop_is_one_line_exit_2(tmp_path, capsys) -> None:
    folder, bad = archive(tmp_path)
    assert cli.main(["data", "index", str(folder), "--on-error", "stop"]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("geodino: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert f"raster {bad}: is truncated or corrupt" in lines[0] and "pass --on-error skip" in lines[0]


def test_only_cut_files_is_no_readable_raster(tmp_path, capsys) -> None:
    _, bad = archive(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(["data", "index", str(bad), "--out", str(tmp_path / "fp.geojson")]) == 2
    err = capsys.readouterr().err
    assert "geodino: error: no readable raster among 1 file" in err and "Traceback" not in err, err
    assert not (tmp_path / "fp.geojson").exists()


def test_healthy_archive_has_nothing_skipped(tmp_path, capsys) -> None:
    folder, _ = archive(tmp_path, cut=False)
    assert cli.main(["data", "index", str(folder)]) == 0
    assert capsys.readouterr().out.startswith("2 scenes, 0 skipped")
