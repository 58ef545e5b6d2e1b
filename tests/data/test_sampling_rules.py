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


def test_a_thin_roi_gets_every_random_tile_centre_inside_it_and_spread_along_it():
    """A road-like ROI (20 m wide, 14 km long, diagonal: 0.3 % of its bounds) misses 100 rejection draws now and
    then; the old code then used the last miss and put the tile outside the ROI (a held-out area, say). The
    fallback draws over the ROI's triangles: every centre inside, and spread along the whole strip."""
    import shapely

    from geodino.data.tiling import TileSampler
    from tests.helpers import scene_info

    scene = scene_info("EPSG:32633", (10.0, 0.0, 500000.0, 0.0, -10.0, 5000000.0), 1000, 1000, path="road.tif")
    road = shapely.LineString([(500100, 4999900), (509900, 4990100)]).buffer(10)  # pixels (10, 10) to (990, 990)
    tiles = TileSampler([scene], 16, roi=road, roi_crs="EPSG:32633")
    region = tiles.roi_px[0]
    assert region.area / shapely.box(*region.bounds).area < 0.005  # thin: 100 draws in its bounds often all miss
    rng = np.random.default_rng(0)
    centres = []
    for _ in range(400):
        _, col, row, w, h = tiles.random_tile(rng)
        centres.append((col + w / 2, row + h / 2))
    # inside (to the rounding of the origin to whole pixels)
    assert all(region.buffer(1.0).contains(shapely.Point(c)) for c in centres)
    along = np.array([c[0] for c in centres])  # the strip runs corner to corner: spread over its whole length
    assert along.min() < 150 and along.max() > 850 and abs(np.median(along) - 500) < 100


def test_a_random_pass_counts_tile_origins_not_area():
    """`TileSampler.__len__` (build_sample_loader's default length) and the random scene weights count the origins a
    tile can take, (H - h + 1) x (W - w + 1), over the tile's pixels: the docstrings said area, which is larger."""
    from geodino.data.tiling import TileSampler
    from tests.helpers import scene_info

    big, small = scene_info(width=791, height=718, path="big.tif"), scene_info(width=300, height=260, path="s.tif")
    tiles = TileSampler([big, small], 256)
    origins = [463 * 536, 5 * 45]  # (718 - 256 + 1) x (791 - 256 + 1), (260 - 256 + 1) x (300 - 256 + 1)
    assert tiles.areas == origins
    assert len(tiles) == round(sum(origins) / 256**2) == 4  # the scenes' area would make 10
    assert np.allclose(tiles.weights, np.array(origins) / sum(origins))  # the small scene is drawn 0.1 % of the time
