"""`geodino data index` names a GeoTIFF cut after an intact header by its driver (GTiff), not its suffix: a `.gtif`
file was counted as a healthy scene ("2 scenes, 0 skipped"). The check runs on the handle the archive's header scan
already has open, so each file is opened once; `RasterArchive` does it only when asked (`check_cut_short`)."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from geodino import cli
from geodino.data.archive import RasterArchive
from tests.data.conftest import ramp, write_tif


def files(tmp_path: Path, suffix: str = ".gtif") -> list[Path]:
    out = []
    for i in range(2):
        tif = tmp_path / f"t{i}.tif"
        write_tif(tif, ramp(3, 64, 64, dtype="uint8", seed=i), nodata=None, origin=(5e5 + i * 1e4, 4.65e6))
        out.append(tif.rename(tmp_path / f"t{i}{suffix}"))
    data = out[1].read_bytes()
    out[1].write_bytes(data[: len(data) // 3])  # the header reads, the pixels stop
    return out


def test_a_cut_gtif_is_skipped(tmp_path, capsys) -> None:
    good, bad = files(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(["data", "index", str(good), str(bad)]) == 0
    text = capsys.readouterr().out
    assert text.startswith("1 scene, 1 skipped"), text
    assert f"skipped {bad}: is truncated or corrupt: the file has {bad.stat().st_size:,} bytes" in text


def test_each_file_is_opened_once(tmp_path, capsys, monkeypatch) -> None:
    import rasterio

    opened: list[str] = []
    real = rasterio.open
    good, bad = files(tmp_path, ".tif")
    monkeypatch.setattr(rasterio, "open", lambda path, *a, **k: opened.append(str(path)) or real(path, *a, **k))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(["data", "index", str(tmp_path)]) == 0
    assert capsys.readouterr().out.startswith("1 scene, 1 skipped")
    assert sorted(opened) == [str(good), str(bad)]


def test_the_archive_checks_only_when_asked(tmp_path) -> None:
    good, bad = files(tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        plain = RasterArchive([good, bad], uniform=False, progress=False)
    assert [s.path for s in plain.scenes] == [str(good), str(bad)] and not plain.skipped
    with pytest.warns(UserWarning, match="is truncated or corrupt"):
        checked = RasterArchive([good, bad], uniform=False, progress=False, on_error="skip", check_cut_short=True)
    assert [s.path for s in checked.scenes] == [str(good)] and [p for p, _ in checked.skipped] == [str(bad)]
