"""The sampling rules every tiled source shares (data/tiling.py): the redraw rule and the per-epoch order."""

from __future__ import annotations

import numpy as np

from geodino.data.tiling import EpochOrder, least_nodata


def _draws(fractions):
    it = iter(fractions)

    def draw():
        frac = next(it)
        valid = np.zeros(100, dtype=bool)
        valid[: round(100 * (1 - frac))] = True
        return {"valid": valid, "frac": frac}

    return draw


def test_least_nodata_takes_the_first_good_draw_else_the_least_nodata():
    sample, draws = least_nodata(_draws([0.9, 0.3, 0.0]), max_tries=5, max_nodata_fraction=0.5)
    assert (sample["frac"], draws) == (0.3, 2)
    assert abs(sample["nodata_fraction"] - 0.3) < 1e-9
    sample, draws = least_nodata(_draws([0.9, 0.7, 0.8, 0.1]), max_tries=3, max_nodata_fraction=0.5)
    assert (sample["frac"], draws) == (0.7, 3)
    assert abs(sample["nodata_fraction"] - 0.7) < 1e-9


def test_epoch_order_visits_every_item_once_per_epoch_and_depends_on_the_seed():
    order = EpochOrder(stream=7)
    first = [order.position(i, seed=0, n=10) for i in range(10)]
    second = [order.position(i, seed=0, n=10) for i in range(10, 20)]
    assert sorted(first) == sorted(second) == list(range(10)) and first != second
    assert [EpochOrder(stream=7).position(i, seed=0, n=10) for i in range(10)] == first
    assert [order.position(i, seed=1, n=10) for i in range(10)] != first
    assert [EpochOrder(stream=7, shuffle=False).position(i, seed=0, n=10) for i in range(12)] == [*range(10), 0, 1]
