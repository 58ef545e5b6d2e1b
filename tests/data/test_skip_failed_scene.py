"""on_error: skip: a raster that breaks mid-run is read once, warned once with this process's count of failed
reads, and left out of sampling (it was retried on every draw, each failure a fresh read); by every source of the
process (a rebuilt source read it again and warned again, counting draws of the left-out scene as failed reads)."""

from __future__ import annotations

import warnings

import numpy as np

from geodino.data import raster_source
from geodino.data.archive import RasterArchive, RasterSource

from .conftest import ramp, write_tif


def test_a_scene_failing_mid_run_is_read_once_and_counted(tmp_path, monkeypatch):
    good = write_tif(tmp_path / "a.tif", ramp(3, 64, 64, dtype="uint8", seed=1))
    bad = write_tif(tmp_path / "b.tif", ramp(3, 64, 64, dtype="uint8", seed=2))
    archive = RasterArchive([good, bad], sensor="maxar", on_error="skip", progress=False)
    source = RasterSource(archive, tile_size=16, max_nodata_fraction=1.0)
    bad_id = [s.path for s in archive.scenes].index(str(bad))
    reads = {"bad": 0}
    real = archive.sample

    def flaky(i, *window):
        if i == bad_id:
            reads["bad"] += 1
            from geodino.errors import InputError

            raise InputError(f"raster {bad}: window read failed (truncated)")
        return real(i, *window)

    monkeypatch.setattr(archive, "sample", flaky)
    before = raster_source._failed_reads
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        paths = {source.get(i, 0)["path"] for i in range(40)}
    assert paths == {str(good)}
    assert reads["bad"] == 1  # not read again once it failed
    said = [str(w.message) for w in caught if "window read failed" in str(w.message)]
    assert len(said) == 1 and "failed read(s) so far in process" in said[0] and "left out of sampling" in said[0]
    assert raster_source._failed_reads - before == 1  # later draws of the dropped scene are no reads (they said 33)
    assert source.failed_scenes == {bad_id}
    assert np.isfinite(source.get(0, 0)["image"]).all()
    # a second source of the same files in this process (pretraining builds its sources again) neither reads the
    # broken scene again nor warns a second time
    again = RasterSource(archive, tile_size=16, max_nodata_fraction=1.0)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert {again.get(i, 0)["path"] for i in range(40)} == {str(good)}
    assert reads["bad"] == 1 and not [w for w in caught if "window read failed" in str(w.message)]
    assert raster_source._failed_reads - before == 1
    write_tif(bad, ramp(3, 64, 64, dtype="uint8", seed=3))  # replaced (re-downloaded): a new source reads it again
    monkeypatch.setattr(archive, "sample", real)
    fixed = RasterSource(archive, tile_size=16, max_nodata_fraction=1.0)
    assert {fixed.get(i, 0)["path"] for i in range(40)} == {str(good), str(bad)}
