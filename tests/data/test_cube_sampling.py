"""Datacube tiles: where random tiles of a chunked store may start (align_to_chunks), and first/last time steps
that are missing (all nodata) at the drawn place."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from geodino.data.cubes import CubeSource
from geodino.data.sensors import Sensor
from tests.helpers import write_zarr3

S3 = Sensor("s3", ("B1", "B2", "B3"), 1e-4, (0.1,) * 3, (0.05,) * 3, False)
T = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4650000.0)


def _store(path, data: np.ndarray, *, chunks: tuple[int, int], times: int = 0, crs: str | None = "EPSG:32633"):
    """A Zarr v3 store of `data` ([T,]C,H,W) chunked (y, x) = `chunks`, bands B1.., dates 2024-01..; returns path."""
    import rioxarray  # noqa: F401
    import xarray as xr

    c, h, w = data.shape[-3:]
    coords = {
        "band": ["B1", "B2", "B3"][:c],
        "y": T.f + (np.arange(h) + 0.5) * T.e,
        "x": T.c + (np.arange(w) + 0.5) * T.a,
    }
    dims: tuple[str, ...] = ("band", "y", "x")
    enc = (c, *chunks)
    if times:
        dims, enc = ("time", *dims), (1, *enc)
        coords["time"] = np.array([f"2024-{m:02d}-01" for m in range(1, times + 1)], dtype="datetime64[ns]")
    da = xr.DataArray(data, dims=dims, coords=coords, name="reflectance")
    if crs:
        da = da.rio.write_crs(crs)
    write_zarr3(da.to_dataset(), path, encoding={"reflectance": {"chunks": enc}})
    return str(path)


def _origin(sample) -> tuple[int, int]:
    t = sample["transform"]
    return round((t.c - T.c) / 10), round((T.f - t.f) / 10)


def test_chunks_larger_than_the_tile_reach_every_tile_aligned_place(tmp_path):
    """A 256x256 cube chunked 128 (y) x 256 (x) with 64-px tiles was only ever read at the two chunk corners
    (0,0) and (0,128). Snapped to the tile grid inside each chunk: 4 rows x 4 columns = 16 origins, each tile
    inside one chunk."""
    store = _store(tmp_path / "c.zarr", np.ones((3, 256, 256), "uint16"), chunks=(128, 256))
    src = CubeSource(store, sensor=S3, tile_size=64)
    assert src.scenes[0].chunks == (128, 256)
    origins = {_origin(src.get(i, 0)) for i in range(400)}
    assert origins == {(c, r) for c in (0, 64, 128, 192) for r in (0, 64, 128, 192)}
    assert all(r // 128 == (r + 63) // 128 for _, r in origins)  # never across the y chunk boundary


def test_chunks_not_a_multiple_of_the_tile_keep_tiles_inside_one_chunk(tmp_path):
    """Chunks 50 x 50 on a 120x120 cube, tiles 20: in each whole chunk the tile grid 0, 20 and the place flush
    with its end, 30 (so every pixel can be drawn, none across a chunk boundary); the last chunk, cut to 20 px by
    the edge, holds one tile at 100: 7 places per axis, 49 origins."""
    store = _store(tmp_path / "c.zarr", np.ones((3, 120, 120), "uint16"), chunks=(50, 50))
    src = CubeSource(store, sensor=S3, tile_size=20)
    origins = {_origin(src.get(i, 0)) for i in range(800)}
    places = (0, 20, 30, 50, 70, 80, 100)
    assert origins == {(c, r) for c in places for r in places}
    assert all(c // 50 == (c + 19) // 50 and r // 50 == (r + 19) // 50 for c, r in origins)


def test_chunks_smaller_than_the_tile_still_snap_to_the_chunk_grid(tmp_path):
    """16-px chunks, 32-px tiles on a 64x64 cube: origins on the chunk grid (0, 16, 32), so a tile reads 2x2
    chunks, never 3x3; each place drawn about equally often (the old snap-down reached 32 only from origin 32)."""
    store = _store(tmp_path / "c.zarr", np.ones((3, 64, 64), "uint16"), chunks=(16, 16))
    src = CubeSource(store, sensor=S3, tile_size=32)
    origins = {_origin(src.get(i, 0)) for i in range(300)}
    assert origins == {(c, r) for c in (0, 16, 32) for r in (0, 16, 32)}
    off = CubeSource(store, sensor=S3, tile_size=32, align_to_chunks=False)
    assert len({_origin(off.get(i, 0)) for i in range(300)}) > 100  # uniform origins when asked


def _dated_cube(tmp_path, missing: dict[int, slice]) -> str:
    """A float32 3-date cube, 64x64, chunked 32x32; `missing` makes date k NaN over columns `slice` (a missing
    acquisition); date k holds the value k + 1 elsewhere."""
    data = np.stack([np.full((3, 64, 64), k + 1.0, "float32") for k in range(3)])
    for k, cols in missing.items():
        data[k, :, :, cols] = np.nan
    return _store(tmp_path / "t.zarr", data, chunks=(32, 32), times=3)


@pytest.mark.parametrize(("sampling", "missing", "fallback"), [("last", 2, 1), ("first", 0, 1)])
def test_first_or_last_date_missing_falls_back_to_the_nearest_date_with_data(tmp_path, sampling, missing, fallback):
    """time_sampling last on a cube whose last date is all NaN returned tiles of nodata fraction 1.0 (every redraw
    kept the date): constant crops. Now the next-latest date (next-earliest for first) with data there."""
    store = _dated_cube(tmp_path, {missing: slice(None)})
    for mode in ("random", "grid"):
        src = CubeSource(store, sensor=S3, tile_size=32, time_sampling=sampling, sampling=mode)
        for i in range(4):
            s = src.get(i, 0)
            assert s["time"][:10] == f"2024-{fallback + 1:02d}-01"
            assert s["valid"].all() and np.allclose(s["image"], (fallback + 1) * 1e-4)
        assert src.date_fallbacks == 4 and src.empty_tiles == 0


def test_a_date_missing_only_in_part_of_the_cube_falls_back_only_there(tmp_path):
    """The last date is missing in the left half: tiles there come from the second date, the right half keeps the
    last date (a partly covered tile keeps its date; the redraw rule handles its nodata fraction)."""
    store = _dated_cube(tmp_path, {2: slice(0, 32)})
    src = CubeSource(store, sensor=S3, tile_size=32, time_sampling="last", sampling="grid")
    by_col = {_origin(s)[0]: s["time"][:10] for s in (src.get(i, 0) for i in range(len(src)))}
    assert by_col == {0: "2024-02-01", 32: "2024-03-01"}


def test_a_tile_without_any_valid_pixel_is_counted_and_said_once(tmp_path):
    """Nodata at every date everywhere: the tile is returned (the loader's check stops a source that gives only
    such tiles), but no longer silently: one warning per source, and `empty_tiles` counts each."""
    store = _dated_cube(tmp_path, {k: slice(None) for k in range(3)})
    src = CubeSource(store, sensor=S3, tile_size=32, time_sampling="last", max_tries=3)
    with pytest.warns(
        UserWarning,
        match=r"source 'cube': a tile of datacube .*t\.zarr holds no valid pixel at any "
        r"date after 3 draws",
    ) as said:
        samples = [src.get(i, 0) for i in range(3)]
    assert len([w for w in said if "no valid pixel" in str(w.message)]) == 1
    assert src.empty_tiles == 3 and src.redraws == 6 and all(s["nodata_fraction"] == 1.0 for s in samples)
