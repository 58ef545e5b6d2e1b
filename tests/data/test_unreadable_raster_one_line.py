"""`geodino data index` / `data stats` on damaged rasters only: one error line naming each file and why. The reason
was said twice: a "skipping raster F: why" warning per file while indexing, then the error "no readable raster
among 1 file (F: why)"; a file without a CRS or geotransform also printed GDAL's "no geotransform" note, a
symptom. Now a skipped file is warned about once the index is built and some file was readable; none readable:
the error alone names them (the first three, then how many more)."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from geodino import cli
from geodino.data.archive import RasterArchive
from geodino.errors import InputError
from tests.data.conftest import tif_folder


def _not_a_raster(path: Path) -> Path:
    path.write_bytes(np.random.default_rng(0).integers(0, 256, 3000, dtype=np.uint8).tobytes())
    return path


def _no_crs(path: Path) -> Path:
    """A GeoTIFF with neither CRS nor geotransform (GDAL notes the missing geotransform when it opens)."""
    import rasterio

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio's NotGeoreferencedWarning on writing it: not what is tested
        with rasterio.open(path, "w", driver="GTiff", width=16, height=16, count=3, dtype="uint8") as dst:
            dst.write(np.full((3, 16, 16), 7, dtype=np.uint8))
    return path


def _run(capsys, argv: list[str]) -> tuple[list[str], list[str]]:
    """(stderr lines, warnings given) of a CLI run that must exit 2."""
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert cli.main([str(a) for a in argv]) == 2
    err = capsys.readouterr().err
    return [ln for ln in err.splitlines() if ln.strip()], [str(w.message) for w in seen]


@pytest.mark.parametrize(
    ("command", "damage", "why"),
    [
        ("index", _not_a_raster, "cannot be read (RasterioIOError"),
        ("index", None, "is truncated or corrupt: the file has"),  # cut after its header (tif_folder)
        ("stats", _no_crs, "has no CRS; assign one"),
    ],
)
def test_a_single_damaged_file_is_one_error_line_naming_it(tmp_path, capsys, command, damage, why):
    if damage is None:
        folder, bad = tif_folder(tmp_path, 2)
        (folder / "t0.tif").unlink()
    else:
        bad = damage(tmp_path / "bad.tif")
    argv = ["data", command, bad] + (["-o", tmp_path / "s.yaml"] if command == "stats" else [])
    lines, said = _run(capsys, argv)
    assert len(lines) == 1 and lines[0].startswith("geodino: error: no readable raster among 1 file"), lines
    assert f"{bad}: {why}" in lines[0], lines[0]
    assert said == []  # no "skipping raster" warning, no GDAL note on the file left out


def test_skipped_files_beside_a_readable_one_are_warned_about_once_each(tmp_path):
    folder, cut = tif_folder(tmp_path, 2)
    junk = _not_a_raster(folder / "t2.tif")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        archive = RasterArchive(folder, on_error="skip", check_cut_short=True, progress=False)
    assert [s.path for s in archive.scenes] == [str(folder / "t0.tif")]
    said = [str(w.message) for w in seen]
    assert said == [f"skipping raster {p}: {why}" for p, why in archive.skipped]
    assert [p for p, _ in archive.skipped] == [str(cut), str(junk)]


def test_none_readable_names_three_and_counts_the_rest(tmp_path):
    bad = [_not_a_raster(tmp_path / f"b{i}.tif") for i in range(5)]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(InputError) as err:
            RasterArchive(tmp_path, on_error="skip", progress=False)
    assert seen == []
    text = str(err.value)
    assert text.startswith("no readable raster among 5 files (") and text.endswith("; and 2 more)"), text
    assert all(f"{p}: cannot be read" in text for p in bad[:3]) and str(bad[3]) not in text


def test_files_skipped_before_another_error_stopped_the_index_are_still_named(tmp_path):
    folder, _ = tif_folder(tmp_path, 1, cut=False)  # t0.tif: 3 bands
    junk = _not_a_raster(folder / "a.tif")  # indexed first, skipped
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(InputError, match=r"t0\.tif has 3 bands but band_names lists 2"):
            RasterArchive(folder, on_error="skip", band_names=["x", "y"], progress=False)
    said = [str(w.message) for w in seen]
    assert len(said) == 1 and said[0].startswith(f"skipping raster {junk}: cannot be read"), said


def test_data_index_names_each_skipped_file_once_in_its_summary(tmp_path, capsys):
    """`data index --on-error skip` prints `skipped F: why` per file in its summary; the archive's skip warning
    said the same reason a second time (a warning line, then the summary line)."""
    folder, cut = tif_folder(tmp_path, 2)
    junk = _not_a_raster(folder / "t2.tif")
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        assert cli.main(["data", "index", str(folder), "--on-error", "skip"]) == 0
    out, err = capsys.readouterr()
    assert [str(w.message) for w in seen] == [] and "skipping raster" not in err, err
    assert out.splitlines()[0] == "1 scene, 2 skipped, 0.0 Mpx", out
    for path in (cut, junk):
        assert sum(str(path) in line for line in (out + err).splitlines()) == 1, (path, out, err)
        assert f"  skipped {path}: " in out
