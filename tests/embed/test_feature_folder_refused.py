"""A plain folder given where a feature raster goes (`geodino embed pca FOLDER`, e.g. a many-scene run's --out):
it was opened as a Zarr store and called damaged ("the file is truncated or corrupt ... write it again"); it is now
one line saying it is a folder and what to pass."""

from __future__ import annotations

from geodino import cli


def test_a_plain_folder_is_no_feature_raster(tmp_path, capsys) -> None:
    runs = tmp_path / "scenes"
    runs.mkdir()
    (runs / "a.tif").write_bytes(b"II*\x00")
    out = tmp_path / "p.tif"
    assert cli.main(["embed", "pca", str(runs), "--out", str(out)]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "corrupt" not in err
    assert err.startswith(f"geodino: error: feature raster {runs} is a folder, not a Zarr store")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["scenes"]
