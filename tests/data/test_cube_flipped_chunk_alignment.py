"""Random tiles of a south-up store (read north-up, rows mirrored) are aligned to its chunks as stored. Aligned to
multiples of the chunk in the mirrored rows, they straddled two chunks whenever height % chunk != 0 (height 100,
chunk 32, 32-px tiles: 167 of 200 tiles fetched 2 chunks; aligned, only the place flush with the edge does)."""

from __future__ import annotations

import re

import numpy as np
import pytest

from geodino.data.cubes import CubeSource
from geodino.data.sensors import Sensor
from geodino.data.tiling import chunk_places
from tests.helpers import write_zarr3

S1 = Sensor("s1", ("B1",), 1e-4, (0.1,), (0.05,), False)
H, W, CHUNK, X0, TOP = 100, 64, 32, 500000.0, 4650000.0


def _store(path, *, south_up: bool, east_west: bool = False) -> tuple[str, np.ndarray]:
    """A 1-band uint16 store of H x W cells chunked 32 x 32 (values 1.. so none is nodata); returns (path, the
    array north-up as geodino reads it)."""
    import rioxarray  # noqa: F401
    import xarray as xr

    north = np.arange(1, H * W + 1, dtype="uint16").reshape(1, H, W)
    stored = north[:, ::-1] if south_up else north
    stored = stored[:, :, ::-1] if east_west else stored
    ys = TOP - 10 * (np.arange(H) + 0.5)
    xs = X0 + 10 * (np.arange(W) + 0.5)
    coords = {"band": ["B1"], "y": ys[::-1] if south_up else ys, "x": xs[::-1] if east_west else xs}
    da = xr.DataArray(np.ascontiguousarray(stored), dims=("band", "y", "x"), coords=coords, name="r")
    write_zarr3(da.rio.write_crs("EPSG:32633").to_dataset(), path, encoding={"r": {"chunks": (1, CHUNK, CHUNK)}})
    return str(path), north[0]


@pytest.fixture
def fetched(monkeypatch):
    """The chunk keys of array `r` the Zarr store hands out, in order (a read's true chunk count)."""
    import zarr.storage

    keys: list[str] = []
    original = zarr.storage.LocalStore.get

    async def get(self, key, *args, **kwargs):
        keys.append(key)
        return await original(self, key, *args, **kwargs)

    monkeypatch.setattr(zarr.storage.LocalStore, "get", get)
    return keys


def _chunks_of(start: int, size: int) -> int:
    return len({r // CHUNK for r in range(start, start + size)})


@pytest.mark.parametrize("tile", [16, 32])
@pytest.mark.parametrize("east_west", [False, True])
def test_tiles_of_a_south_up_store_read_the_aligned_chunk_count(tmp_path, fetched, tile, east_west):
    path, north = _store(tmp_path / "s.zarr", south_up=True, east_west=east_west)
    src = CubeSource(path, sensor=S1, tile_size=tile)
    assert src.scenes[0].mirrored == (("y", "x") if east_west else ("y",))
    places_y, places_x = chunk_places(tile, CHUNK, H), chunk_places(tile, CHUNK, W)
    for i in range(60):
        fetched.clear()
        s = src.get(i, 0)
        col, row = round((s["transform"].c - X0) / 10), round((TOP - s["transform"].f) / 10)
        stored_row = H - tile - row  # the window's first row as stored
        stored_col = W - tile - col if east_west else col
        assert stored_row in places_y and stored_col in places_x, (row, col)
        want = _chunks_of(stored_row, tile) * _chunks_of(stored_col, tile)  # the aligned place's count
        got = len({k for k in fetched if re.search(r"(^|/)r/c/", k)})
        assert got == want, (row, col, got, want)
        np.testing.assert_allclose(s["image"][0], north[row : row + tile, col : col + tile] * 1e-4, rtol=1e-6)


def test_a_north_up_store_keeps_its_places(tmp_path):
    """Stored north-up, nothing is mirrored: origins stay on the chunk grid of the rows read."""
    path, _ = _store(tmp_path / "n.zarr", south_up=False)
    src = CubeSource(path, sensor=S1, tile_size=32)
    rows = {round((TOP - src.get(i, 0)["transform"].f) / 10) for i in range(100)}
    assert rows == set(chunk_places(32, CHUNK, H).tolist()) == {0, 32, 64, 68}


def _grid_counts(src, fetched) -> list[int]:
    counts = []
    for i in range(len(src)):
        fetched.clear()
        src.get(i, 0)
        counts.append(len({k for k in fetched if re.search(r"(^|/)r/c/", k)}))
    return counts


@pytest.mark.parametrize("east_west", [False, True])
def test_grid_windows_of_a_mirrored_store_read_as_few_chunks_as_north_up(tmp_path, fetched, east_west):
    """sampling: grid lays a mirrored axis's windows from its far edge, as stored: 32-px windows on 32-px chunks
    read one chunk each but the row flush with the edge (6 of the 8 windows read two before: stored rows 68, 36, 4)."""
    north_path, _ = _store(tmp_path / "n.zarr", south_up=False)
    path, north = _store(tmp_path / "s.zarr", south_up=True, east_west=east_west)
    want = _grid_counts(CubeSource(north_path, sensor=S1, tile_size=32, sampling="grid", shuffle=False), fetched)
    src = CubeSource(path, sensor=S1, tile_size=32, sampling="grid", shuffle=False)
    got = _grid_counts(src, fetched)
    assert sorted(got) == sorted(want) and sum(got) == 10  # 2 columns x (3 one-chunk rows + the flush row's 2)
    assert sorted(set((H - 32 - src.tiles.grid_row).tolist())) == [0, 32, 64, 68]  # stored rows: the chunk grid
    cols = set(src.tiles.grid_col.tolist())
    assert cols == {0, 32}  # W is a multiple of the chunk: mirrored or not, the same columns
    for i in range(len(src)):  # still the right pixels, north-up
        s = src.get(i, 0)
        col, row = round((s["transform"].c - X0) / 10), round((TOP - s["transform"].f) / 10)
        np.testing.assert_allclose(s["image"][0], north[row : row + 32, col : col + 32] * 1e-4, rtol=1e-6)


def test_data_stats_windows_of_a_mirrored_axis_start_at_its_far_edge():
    """data stats' non-overlapping windows: on a mirrored axis the clipped window is the near (north/west) one, so
    the stored origins are multiples of the tile; every pixel is still covered once."""
    from types import SimpleNamespace

    from geodino.data.stats_windows import grid_windows

    plain = SimpleNamespace(width=W, height=H)
    flipped = SimpleNamespace(width=70, height=H, mirrored=("y", "x"))
    windows, total = grid_windows([plain, flipped], 32, 1000, 0)
    assert total == len(windows) == 4 * 2 + 4 * 3
    ys = sorted({(y, h) for i, x, y, w, h in windows if i == 1})
    assert ys == [(0, 4), (4, 32), (36, 32), (68, 32)]
    assert sorted({H - y - h for y, h in ys}) == [0, 32, 64, 96]  # stored row origins: k * 32
    assert sorted({(70 - x - w) for i, x, y, w, h in windows if i == 1}) == [0, 32, 64]
    assert sorted({(y, h) for i, x, y, w, h in windows if i == 0}) == [(0, 32), (32, 32), (64, 32), (96, 4)]
    for i, sc in enumerate((plain, flipped)):  # every pixel once
        cover = np.zeros((sc.height, sc.width), dtype=int)
        for j, x, y, w, h in windows:
            if j == i:
                cover[y : y + h, x : x + w] += 1
        assert (cover == 1).all()
