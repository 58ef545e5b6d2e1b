"""Polygon edges through cell centres: each cell goes to exactly one of two adjacent polygons.

Adjacent parcels of a grid, or boxes drawn in pixel units (NEON/DeepForest crowns at 0.1 m on 0.8 m cells), have
edges that run exactly through cell centres. Rasterised through each polygon's own window transform (its origin
rounded differently per window), such a cell fell on either side by that rounding: a fishnet of polygons counted
some cells twice and others not at all, so zonal over the parts did not add up to zonal over the whole, and two
adjacent label polygons of different classes could both claim a cell.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from geodino.embed import zonal_embeddings

# an origin and cell size whose sums round in floats, as a real grid's do (OSBS_029 on 8 px cells of 0.1 m)
X0, Y0, RES = 404211.9, 3285142.9, 0.8
T = from_origin(X0, Y0, RES, RES)


def _feature_raster(path: Path, h: int = 30, w: int = 30, d: int = 4) -> tuple[Path, np.ndarray]:
    from tests.embed.test_products import feature_raster

    f = np.random.default_rng(0).normal(size=(d, h, w)).astype(np.float32)
    return feature_raster(path, f, "EPSG:32617", transform=T), f


def _fishnet(k: int = 8, side: int = 3, start: float = 1.5):
    """k x k squares of `side` cells whose edges run through cell centres, sharing their edge coordinates, and the
    one box they tile (its edges the same numbers)."""
    from shapely.geometry import box

    xs = [X0 + (start + side * i) * RES for i in range(k + 1)]
    ys = [Y0 - (start + side * j) * RES for j in range(k + 1)]
    parts = [box(xs[i], ys[j + 1], xs[i + 1], ys[j]) for j in range(k) for i in range(k)]
    return parts, box(xs[0], ys[k], xs[k], ys[0])


@pytest.mark.parametrize("all_touched", [False, True])
def test_zonal_over_a_fishnet_adds_up_to_zonal_over_its_outline(tmp_path, all_touched):
    import geopandas as gpd

    src, _ = _feature_raster(tmp_path / "feat.tif")
    parts, whole = _fishnet()
    gdf = gpd.GeoDataFrame({"name": ["part"] * len(parts) + ["whole"]}, geometry=[*parts, whole], crs="EPSG:32617")
    gdf.to_file(tmp_path / "net.gpkg")
    res = gpd.read_parquet(
        zonal_embeddings(src, tmp_path / "net.gpkg", tmp_path / "z.parquet", all_touched=all_touched)
    )
    n = res["n_cells"].to_numpy()
    if not all_touched:  # centre inside: the parts partition the outline's cells (all touched: they share edges)
        assert n[:-1].sum() == n[-1] and 23 * 23 <= n[-1] <= 25 * 25  # the outline's own ties go either way
        emb = np.stack([np.asarray(e, np.float64) for e in res["embedding"]])
        np.testing.assert_allclose((emb[:-1] * n[:-1, None]).sum(0) / n[:-1].sum(), emb[-1], atol=1e-5)
    else:  # every part touches 4 x 4 cells: its edges run through centres, far from cell borders
        assert set(n[:-1]) == {16}


def test_a_cell_mask_does_not_depend_on_the_window_it_is_read_through():
    from rasterio.windows import Window

    from geodino.embed.placement import cell_mask, cell_window

    parts, _ = _fishnet()
    for g in parts:
        w = cell_window(T, g, 30, 30)
        r0, c0, h, wd = int(w.row_off), int(w.col_off), int(w.height), int(w.width)
        ref = np.zeros((30, 30), bool)
        ref[r0 : r0 + h, c0 : c0 + wd] = cell_mask(g, T, w, all_touched=False)
        for dc, dr in ((1, 0), (0, 2), (3, 5)):
            if c0 < dc or r0 < dr:
                continue
            big = Window(c0 - dc, r0 - dr, wd + dc, h + dr)
            got = np.zeros((30, 30), bool)
            got[r0 - dr : r0 + h, c0 - dc : c0 + wd] = cell_mask(g, T, big, all_touched=False)
            assert (got == ref).all() and ref.any()


@pytest.mark.parametrize("south_up", [False, True])
def test_touched_cells_are_those_of_one_whole_raster_rasterize(south_up):
    """Boxes with edges on cell centres and cell borders (half-cell steps) touch, window by window, exactly the cells
    GDAL gives them in one `rasterio.features.rasterize(all_touched=True)` of the whole raster, the independent
    reference a GIS user checks zonal statistics against. (Centre mode is not compared: on a north-up grid GDAL's
    whole-raster rasterize gives a tie row to both of two adjacent polygons, which the fishnet test rules out.)"""
    from affine import Affine
    from rasterio.features import rasterize
    from shapely.geometry import box

    from geodino.embed.placement import cell_mask, cell_window

    t = Affine(RES, 0, X0, 0, RES, Y0 - 50 * RES) if south_up else T
    rng = np.random.default_rng(1)
    differ = []
    for k in range(60):
        c0, r0 = rng.integers(0, 35, 2) * 0.5
        cw, rh = rng.integers(1, 20, 2) * 0.5
        (x0, y0), (x1, y1) = t * (c0, r0), t * (c0 + cw, r0 + rh)
        g = box(min(x0, x1), min(y0, y1), max(x0, x1), max(y0, y1))
        ref = rasterize([(g, 1)], out_shape=(50, 50), transform=t, fill=0, all_touched=True).astype(bool)
        w = cell_window(t, g, 50, 50)
        got = np.zeros((50, 50), bool)
        r, c = int(w.row_off), int(w.col_off)
        got[r : r + int(w.height), c : c + int(w.width)] = cell_mask(g, t, w, all_touched=True)
        if (got != ref).any():
            differ.append(k)
    assert differ == []
