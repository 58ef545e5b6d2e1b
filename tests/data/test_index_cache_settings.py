"""Two sources (or commands) with other reading settings sharing one `index_cache` path: the one file held the last
run's index only, so runs alternating the two rebuilt the index at every start, each overwriting the other's. The
first settings' index stays in the path given, another's goes to a file of its own beside it."""

from __future__ import annotations

import json
import os

import pytest

from geodino.data import archive_index
from geodino.data.archive import RasterArchive
from tests.data.test_colour_band_names import _tif


def test_runs_alternating_two_settings_reuse_both_indexes(tmp_path, monkeypatch: pytest.MonkeyPatch) -> None:
    path, _ = _tif(tmp_path / "rgb.tif", ("red", "green", "blue"))
    cache = tmp_path / "index.json"
    real, built = RasterArchive._index, []
    monkeypatch.setattr(
        RasterArchive, "_index", lambda self, progress: built.append(self.nodata_override) or real(self, progress)
    )

    def run(nodata: float) -> RasterArchive:
        archive_index._MEMO.clear()  # each a new process
        return RasterArchive([str(path)], sensor="sentinel2_l2a", nodata=nodata, index_cache=cache, progress=False)

    for nodata in (0, 7, 0, 7, 0):
        assert run(nodata).scenes[0].nodata == nodata
    assert built == [0, 7]  # each settings' index built once, then read
    assert json.loads(cache.read_text())["key"]["nodata"] == 0  # the first stays where it was asked
    (other,) = set(tmp_path.glob("index.*.json"))
    assert json.loads(other.read_text())["key"]["nodata"] == 7
    os.utime(path, ns=(1, 1))  # a changed file: each settings' index is rebuilt in its own file, none in a third
    assert run(7).scenes[0].nodata == run(0).scenes[0].nodata + 7
    assert built[2:] == [7, 0] and set(tmp_path.glob("index*.json")) == {cache, other}
