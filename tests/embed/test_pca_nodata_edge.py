"""The PCA map is fitted on cells away from nodata: a scene edge's cells are partly nodata (the fill seen by the
backbone), which the feature raster does not record, and their odd vectors drew a principal component of their own.
Before, they were fitted like any cell: PC1 (red) followed the ring of edge cells and the interior's structure was
pushed to a later component. They are still coloured (projected), only not fitted."""

from __future__ import annotations

import numpy as np
import rasterio

from geodino.embed import pca_map
from geodino.embed.reader import EmbeddingReader, interior_cells
from tests.embed.test_classify import feature_raster


def _edge_scene() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """8-d features 30 x 40: a 4-cell nodata border left and top; interior left half vs right half differ along
    band 0 (by 2); the ring of cells next to the nodata is off by 40 along band 5 (the fill's pull)."""
    rng = np.random.default_rng(0)
    f = rng.normal(scale=0.1, size=(8, 30, 40)).astype(np.float32)
    f[0, :, 22:] += 2.0
    valid = np.ones((30, 40), bool)
    valid[:4], valid[:, :4] = False, False
    ring = valid & ~interior_cells(valid)
    f[5][ring] += 40.0
    f[:, ~valid] = np.nan
    return f, valid, ring


def test_edge_cells_are_coloured_but_do_not_draw_a_component(tmp_path) -> None:
    f, valid, ring = _edge_scene()
    assert ring.sum() == 26 + 36 - 1  # the ring: one row and one column of cells next to the border
    src = feature_raster(tmp_path / "edge.tif", f)
    out = pca_map(src, tmp_path / "pca.tif", sample=5000)
    with rasterio.open(out) as ds:
        rgb = ds.read().astype(float)
    red = rgb[0]
    inner = valid & ~ring
    left, right = inner & (np.arange(40) < 22), inner & (np.arange(40) >= 22)
    # PC1 separates the interior's halves (stretched 2-98 %: the two ends of the red range)
    assert abs(red[left].mean() - red[right].mean()) > 200
    assert (rgb[:, valid] > 0).all()  # the edge ring is coloured too (1..255), only nodata is 0
    assert (rgb[:, ~valid] == 0).all()


def test_interior_sample_matches_across_row_blocks(tmp_path, monkeypatch) -> None:
    """Blocks one row high: a cell's neighbours in the rows above and below are read as context."""
    f, valid, ring = _edge_scene()
    src = feature_raster(tmp_path / "edge.tif", f)
    with EmbeddingReader(src) as rd:
        whole = rd.sample(10**6, interior=True)
        monkeypatch.setattr(EmbeddingReader, "blocks", lambda self, budget_bytes=0: _rows(self))
        by_row = rd.sample(10**6, interior=True)
        every = rd.sample(10**6)
    assert len(whole) == len(by_row) == (valid & ~ring).sum()
    np.testing.assert_array_equal(np.sort(whole[:, 0]), np.sort(by_row[:, 0]))
    assert len(every) == valid.sum()
    assert np.abs(whole[:, 5]).max() < 1  # no ring cell was drawn


def _rows(rd: EmbeddingReader):
    from rasterio.windows import Window

    for r in range(rd.height):
        yield Window(0, r, rd.width, 1)


def test_a_raster_of_thin_strips_falls_back_to_every_valid_cell(tmp_path) -> None:
    """No cell with 8 valid neighbours: fitted on the valid cells rather than refused."""
    f = np.random.default_rng(1).normal(size=(4, 12, 12)).astype(np.float32)
    f[:, 1::2] = np.nan  # every other row nodata
    src = feature_raster(tmp_path / "strips.tif", f)
    with EmbeddingReader(src) as rd:
        assert len(rd.sample(1000, interior=True)) == 6 * 12
