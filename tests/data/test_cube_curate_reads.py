"""`geodino data curate` of a cube under time_sampling first/last read every tile once more while the tile list was
built (to find the date the source falls back to where its own is missing): a full extra pass over the archive.
The embedding pass now returns the date it read with the embedding (`Tiles.read`, `Tiles.set_times`), so each
(tile, date) is read once; the tile list is what the old code wrote (dates per tile computed by hand and checked
against the old code: fallbacks of one and two dates, and a tile with no data at any date keeping its own)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from affine import Affine

from geodino.config import load_config
from geodino.data.cubes import CubeSource
from geodino.data.loaders import build_sources
from geodino.train.config import PretrainConfig
from tests.data.test_curate_cube_dates import curate_cube, write_dated_cube

T = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4650000.0)
SPEC = "arch:vit_tiny?depth=1&seed=0&layerscale_init=1.0"
# (col, row) -> (time step listed, status) for last and first: the top-left tile misses the chosen date and the
# next one (two fallbacks), the top-right the chosen date (one), the bottom-left every date (nodata, keeps its own)
WANT = {
    "last": {(0, 0): (0, "not sampled"), (32, 0): (1, "kept"), (0, 32): (2, "nodata"), (32, 32): (2, "kept")},
    "first": {(0, 0): (2, "kept"), (32, 0): (1, "not sampled"), (0, 32): (0, "nodata"), (32, 32): (0, "kept")},
}


def _curate(root, sampling: str) -> tuple[str, object]:
    """(store, curate folder) of `geodino data curate` on a float32 64x64 cube of 3 dates (date k holds about
    0.1 (k + 1) in reflectance) with NaN gaps as WANT describes, tiles of 32 px, 2 kept."""
    rng = np.random.default_rng(0)
    data = np.stack([np.full((3, 64, 64), k + 1.0, "float32") for k in range(3)])
    data += rng.uniform(0, 0.5, data.shape).astype("float32")
    chosen, after = (2, 1) if sampling == "last" else (0, 1)
    data[chosen, :, :32, :] = np.nan  # the chosen date is missing in the top row of tiles
    data[after, :, :32, :32] = np.nan  # and the next one too in the top-left tile
    data[:, :, 32:, :32] = np.nan  # the bottom-left tile has no data at any date
    store, sensor = write_dated_cube(root, data)
    return str(store), curate_cube(root, store, sensor, sampling, size=2)


@pytest.mark.parametrize("sampling", ["last", "first"])
def test_the_curated_list_names_the_dates_the_old_code_named(tmp_path, sampling):
    _, out = _curate(tmp_path, sampling)
    table = pd.read_parquet(out / "tiles.parquet")
    got = {(int(c), int(r)): (int(t), s) for c, r, t, s in zip(table.col, table.row, table.time, table.status)}
    assert got == WANT[sampling]
    assert table.time.dtype == np.int64
    kept = pd.read_parquet(out / "curated.parquet")
    want_kept = {k: t for k, (t, s) in WANT[sampling].items() if s == "kept"}
    assert {(int(c), int(r)): int(t) for c, r, t in zip(kept.col, kept.row, kept.time)} == want_kept
    (src,) = build_sources(load_config(PretrainConfig, out / "config.yaml").data, progress=False)
    for i in range(len(src)):  # the list read back: each kept tile at its listed date, with data
        s = src.get(i, 0)
        col, row = round((s["transform"].c - T.c) / 10), round((T.f - s["transform"].f) / 10)
        assert s["time"][:10] == f"2024-0{want_kept[(col, row)] + 1}-01" and s["valid"].all()


@pytest.mark.parametrize("sampling", ["last", "first"])
def test_each_tile_and_date_is_read_once_while_listing_and_embedding(tmp_path, monkeypatch, sampling):
    """Reads up to the exemplar mosaic: the chosen date of each tile, then each earlier (last) or later (first)
    date until one has data, each once (9 reads); the old code read every tile again at its listed date (13). The
    mosaic's reads afterwards are at the listed dates (`set_times` gave the source its dates)."""
    import geodino.data.curate.pipeline as pipeline

    reads: list[tuple[int, int, int]] = []
    read = CubeSource.read

    def counted(self, scene_i, col, row, width, height, t):
        reads.append((int(col), int(row), int(t)))
        return read(self, scene_i, col, row, width, height, t)

    before_mosaic: list[int] = []
    mosaic = pipeline.mosaic

    def mark(*args, **kwargs):
        before_mosaic.append(len(reads))
        return mosaic(*args, **kwargs)

    monkeypatch.setattr(CubeSource, "read", counted)
    monkeypatch.setattr(pipeline, "mosaic", mark)
    _curate(tmp_path, sampling)
    n = before_mosaic[0]
    dates = [2, 1, 0] if sampling == "last" else [0, 1, 2]
    want = [(0, 0, t) for t in dates] + [(32, 0, t) for t in dates[:2]] + [(0, 32, t) for t in dates]
    want += [(32, 32, dates[0])]
    assert sorted(reads[:n]) == sorted(want) and len(set(reads[:n])) == n == 9
    listed = {k: t for k, (t, _) in WANT[sampling].items()}
    assert reads[n:] and all(listed[(c, r)] == t for c, r, t in reads[n:])
