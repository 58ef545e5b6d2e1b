"""Chunk-aligned random tiles of a cube keep the ROI's promise: tile centres inside it. Aligned after the draw, a
tile moved up to a place away: under a 5-row strip (rows 40..44, 64-px chunks, 32-px tiles) every tile was centred
on row 16 or 48, none in the strip, and those at row 0 lay wholly outside it (a held-out area, say)."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.data.cubes import CubeSource
from geodino.data.sensors import Sensor
from geodino.data.tiling import chunk_places
from tests.helpers import write_zarr3

S1 = Sensor("s1", ("B1",), 1e-4, (0.1,), (0.05,), False)
N, CHUNK, TILE, X0, TOP = 128, 64, 32, 500000.0, 4650000.0


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    """A 1-band 128 x 128 uint16 store in EPSG:32633, 10 m cells, chunked 64 x 64."""
    import rioxarray  # noqa: F401
    import xarray as xr

    path = tmp_path_factory.mktemp("roi") / "c.zarr"
    ys, xs = TOP - 10 * (np.arange(N) + 0.5), X0 + 10 * (np.arange(N) + 0.5)
    da = xr.DataArray(np.ones((1, N, N), "uint16"), dims=("band", "y", "x"), coords={"band": ["B1"], "y": ys, "x": xs})
    write_zarr3(
        da.rio.write_crs("EPSG:32633").to_dataset(name="r"), path, encoding={"r": {"chunks": (1, CHUNK, CHUNK)}}
    )
    return str(path)


def _rows(store: str, r0: int, r1: int) -> tuple[list[int], list[int]]:
    """(origin rows, origin cols) of 40 random tiles under a ROI of pixel rows r0..r1 (every column)."""
    y0, y1 = TOP - 10 * r0, TOP - 10 * r1
    roi = f"POLYGON(({X0} {y0}, {X0 + 10 * N} {y0}, {X0 + 10 * N} {y1}, {X0} {y1}, {X0} {y0}))"
    src = CubeSource(store, sensor=S1, tile_size=TILE, roi=roi, roi_crs="EPSG:32633")
    tr = [src.get(i, 0)["transform"] for i in range(40)]
    return [round((TOP - t.f) / 10) for t in tr], [round((t.c - X0) / 10) for t in tr]


def test_tiles_under_a_thin_roi_are_centred_in_it(store):
    rows, _ = _rows(store, 40, 45)
    assert all(40 <= r + TILE / 2 <= 45 for r in rows), sorted(set(rows))


def test_tiles_under_a_wide_roi_stay_chunk_aligned(store):
    """Where the aligned place keeps the centre inside the ROI, the tile is aligned as without one."""
    rows, cols = _rows(store, 0, 64)
    places = set(chunk_places(TILE, CHUNK, N).tolist())
    assert set(rows) <= places and set(cols) <= places
    assert all(r + TILE / 2 <= 64 for r in rows) and len(set(cols)) > 1
