"""Curating a cube (time_sampling random: one tile per window and date) read each tile through `CubeSource.get`,
whose once-per-source warning for a tile without a valid pixel ('... it is used as it is (`empty_tiles` counts
them); check the store's nodata/_FillValue, the ROI and max_tries') is about training on it; curation drops such a
tile as nodata, so the warning was wrong there. The tiles are now read at their listed date directly: the same
pixels, nodata tiles still dropped, no warning."""

from __future__ import annotations

import warnings

import numpy as np

from geodino.data.config import SourceConfig
from geodino.data.curate.tiles import Tiles
from tests.data.test_curate_cube_dates import write_dated_cube


def test_a_cube_tile_without_data_is_nodata_without_the_training_warning(tmp_path):
    rng = np.random.default_rng(0)
    data = (1.0 + rng.uniform(0, 0.5, (3, 3, 64, 64))).astype("float32")
    data[1, :, :32, 32:] = np.nan  # date 1: the top-right tile has no valid pixel
    store, sensor = write_dated_cube(tmp_path, data)
    cfg = SourceConfig(name="cube", type="cube", paths=[store], sensor=sensor, tile_size=32)
    tiles = Tiles([cfg])
    assert len(tiles) == 12  # 4 windows x 3 dates
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        reads = [tiles.read(k) for k in range(len(tiles))]
    assert not [w for w in seen if "no valid pixel" in str(w.message)], [str(w.message) for w in seen]
    for k, (image, valid, _, t) in enumerate(reads):
        col, row, step = tiles.table["col"][k], tiles.table["row"][k], tiles.table["time"][k]
        assert t == step
        want = data[step, :, row : row + 32, col : col + 32]
        assert valid.all() == np.isfinite(want).all() and valid.any() == np.isfinite(want).any()
        np.testing.assert_allclose(image[:, valid], 0.1 * want[:, valid], rtol=1e-6)  # scale 0.1
    empty = [k for k, r in enumerate(reads) if not r[1].any()]
    assert [(tiles.table["col"][k], tiles.table["row"][k], tiles.table["time"][k]) for k in empty] == [(32, 0, 1)]
