"""The catch-alls added for `data index --valid`, torchgeo sources' file nodata and curate list grids catch what
GDAL/rasterio raise for unreadable files (named, or left to the next reader) and nothing else: a programming error
still surfaces."""

from __future__ import annotations

import types

import numpy as np
import pandas as pd
import pytest

from geodino.data import torchgeo_source, valid_footprint
from geodino.data.archive import RasterArchive

from .conftest import write_tif


def _scene(tmp_path):
    path = write_tif(tmp_path / "a.tif", np.full((1, 64, 64), 5, "uint16"), nodata=0)
    return path, RasterArchive(path, uniform=False, require_crs=False, progress=False).scenes[0]


def test_an_unreadable_raster_is_named_by_index_valid(tmp_path):
    path, scene = _scene(tmp_path)
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 3])  # cut inside the pixel data: GDAL fails on the read
    geom, why = valid_footprint.valid_footprint(scene)
    assert geom is None and why.startswith("its valid pixels could not be read (")


def test_a_bug_in_index_valid_is_not_reported_as_an_unreadable_file(tmp_path, monkeypatch):
    _, scene = _scene(tmp_path)

    def broken(*a, **k):
        raise KeyError("bug")

    monkeypatch.setattr(valid_footprint, "_valid_mask", broken)
    with pytest.raises(KeyError, match=r"^'bug'$"):  # the bug's own error, not wrapped as an unreadable file
        valid_footprint.valid_footprint(scene)


def test_torchgeo_file_nodata_skips_a_missing_file_and_reads_the_next(tmp_path):
    path, _ = _scene(tmp_path)
    index = pd.DataFrame({"filepath": [str(tmp_path / "gone.tif"), str(path)]})
    assert torchgeo_source._files_nodata(types.SimpleNamespace(index=index)) == 0.0
