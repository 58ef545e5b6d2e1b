"""Window plan and blending weights: grid geometry, partition of unity, hard centre crop."""

from __future__ import annotations

import math

import numpy as np
import pytest
from affine import Affine

from geodino.embed.blend import ramp_1d, tile_weights
from geodino.embed.plan import auto_chunk, make_plan, tile_starts
from geodino.errors import ConfigError


def test_tile_starts_cover_and_shift_last_tile():
    assert tile_starts(10, 16, 12) == (0,)  # smaller than a tile: one padded tile
    assert tile_starts(40, 16, 12) == (0, 12, 24)
    assert tile_starts(45, 16, 12) == (0, 12, 24, 29)  # last one ends on the edge
    for n in range(16, 90):
        s = tile_starts(n, 16, 12)
        covered = np.zeros(n, bool)
        for v in s:
            covered[v : v + 16] = True
        assert covered.all() and s[-1] + 16 == n


def test_plan_output_grid_is_patch_grid():
    t = Affine(10.0, 0.0, 500000.0, 0.0, -10.0, 4000000.0)
    plan = make_plan(1000, 777, t, patch=16, tile=256, overlap=64, chunk=16)
    assert (plan.out_height, plan.out_width) == (63, 49)  # ceil(1000/16), ceil(777/16)
    assert plan.out_transform == Affine(160.0, 0.0, 500000.0, 0.0, -160.0, 4000000.0)
    blocks = plan.blocks()
    assert all(b.r0 % 16 == 0 and b.c0 % 16 == 0 for b in blocks)
    cover = np.zeros((63, 49), int)
    for b in blocks:
        cover[b.r0 : b.r1, b.c0 : b.c1] += 1
    assert (cover == 1).all()


@pytest.mark.parametrize(
    ("kw", "msg"),
    [
        ({"tile": 250}, "multiple of the backbone's patch size"),
        ({"overlap": 8}, "multiple of the backbone's patch size"),
        ({"overlap": 160}, "at most half the tile"),
    ],
)
def test_plan_rejects_bad_sizes(kw, msg):
    args = {"patch": 16, "tile": 256, "overlap": 64}
    args.update(kw)
    with pytest.raises(ConfigError, match=msg):
        make_plan(100, 100, Affine.identity(), **args)


def _blend_sum(n_cells, tile, overlap, mode, margin=0):
    starts = tile_starts(n_cells, tile, tile - overlap)
    total = np.zeros(n_cells)
    for i, s in enumerate(starts):
        lo = starts[i - 1] + tile - s if i > 0 else 0
        hi = s + tile - starts[i + 1] if i + 1 < len(starts) else 0
        total[s : s + tile] += ramp_1d(tile, lo, hi, mode, margin)
    return total


@pytest.mark.parametrize("margin", [0, 1, 2])
def test_cosine_weights_are_a_partition_of_unity(margin):
    total = _blend_sum(16 + 12 * 5, 16, 4 + 2 * margin, "cosine", margin)
    np.testing.assert_allclose(total, 1.0, atol=1e-6)


def test_cosine_ramp_values_by_hand():
    w = ramp_1d(8, 4, 0, "cosine")
    expect = np.sin(0.5 * np.pi * (np.arange(4) + 0.5) / 4) ** 2
    np.testing.assert_allclose(w[:4], expect, rtol=1e-6)
    assert (w[4:] == 1).all()
    w = ramp_1d(8, 4, 4, "cosine", margin=1)  # margin cells get 0, ramp over the 2 middle cells
    np.testing.assert_allclose(w, [0, 0.14644662, 0.85355338, 1, 1, 0.85355338, 0.14644662, 0], rtol=1e-6)


@pytest.mark.parametrize("overlap", [3, 4, 5, 8])
def test_center_crop_gives_each_cell_one_owner(overlap):
    total = _blend_sum(16 + (16 - overlap) * 4 + 3, 16, overlap, "center")
    assert (total == 1).all()


def test_hann_weights_positive_and_margin_zeroed():
    w = tile_weights(8, (0, 0), (0, 0), "hann")
    assert (w > 0).all() and w[3:5, 3:5].min() == w.max()
    w = tile_weights(8, (4, 0), (0, 4), "hann", margin=2)
    assert (w[:2] == 0).all() and (w[:, -2:] == 0).all() and (w[2:, :-2] > 0).all()


def test_auto_chunk_bounds_chunk_bytes():
    assert auto_chunk(64, 1) == 256
    assert auto_chunk(384, 4) == 64
    assert 384 * auto_chunk(384, 4) ** 2 * 4 <= 16 * 2**20


@pytest.mark.parametrize(
    ("tiles_per_row", "batch_size", "fill"),
    [(21, 8, 7), (22, 8, 8), (5, 4, 3), (8, 8, 8), (16, 8, 8), (3, 8, 3), (1, 8, 1), (9, 1, 1), (5, 2, 2)],
)
def test_batch_fill_balances_each_rows_batches(tiles_per_row, batch_size, fill):
    """As many forwards per tile row as batches of `batch_size` need, filled evenly (21 at 8: 7+7+7, not 8+8+5)."""
    tile, stride = 32, 24  # cells; tiles_per_row tiles span (n - 1) * stride + tile cells
    plan = make_plan(64, ((tiles_per_row - 1) * stride + tile) * 8, Affine.identity(), patch=8, tile=256, overlap=64)
    assert len(plan.col_starts) == tiles_per_row
    got = plan.batch_fill(batch_size)
    assert got == fill
    assert math.ceil(tiles_per_row / got) == math.ceil(tiles_per_row / batch_size)  # no extra forward


def test_batch_fill_rejects_a_batch_below_one():
    plan = make_plan(64, 64, Affine.identity(), patch=8, tile=32, overlap=8)
    with pytest.raises(ConfigError, match="batch_size=0"):
        plan.batch_fill(0)


def test_batch_fill_counts_the_widest_column_blocks_row():
    """A raster wider than one column block: rows are swept block by block, so n is the tiles touching the first
    (widest) block, not the whole row."""
    plan = make_plan(64, 8 * 200, Affine.identity(), patch=8, tile=256, overlap=64, chunk=16, max_block_cols=96)
    c0, c1 = plan.col_blocks()[0]
    n0 = len(plan.tiles_touching(plan.col_starts, c0, c1))
    assert n0 < len(plan.col_starts) and len(plan.col_blocks()) > 1
    assert plan.batch_fill(n0 - 1) == math.ceil(n0 / 2)
    assert plan.batch_fill(len(plan.col_starts)) == n0
