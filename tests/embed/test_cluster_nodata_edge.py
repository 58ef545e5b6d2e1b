"""The cluster map is fitted on cells away from nodata, as the PCA map is (`EmbeddingReader.sample(interior=True)`):
a scene edge's cells are partly nodata, and their odd vectors drew a cluster of their own. Before, with k=2 one
cluster was the ring of edge cells and the interior's two halves shared the other. They are still labelled."""

from __future__ import annotations

import numpy as np
import rasterio

from geodino.embed import cluster_map
from tests.embed.test_classify import feature_raster
from tests.embed.test_pca_nodata_edge import _edge_scene


def test_edge_cells_are_labelled_but_do_not_draw_a_cluster(tmp_path) -> None:
    f, valid, ring = _edge_scene()
    # cosine k-means: give the halves a common direction (band 1) and part them by 0.5 along band 0, closer to
    # each other than to the ring (band 5), so that fitted on every cell k=2 spent a cluster on the ring
    f[1][valid] += 1.0
    f[0, :, 22:] -= 1.5
    out = cluster_map(feature_raster(tmp_path / "edge.tif", f), tmp_path / "c.tif", k=2, sample=5000)
    with rasterio.open(out) as ds:
        lab = ds.read(1)
    inner = valid & ~ring
    left, right = inner & (np.arange(40) < 22), inner & (np.arange(40) >= 22)
    major = [np.bincount(lab[m], minlength=2).argmax() for m in (left, right)]
    assert major[0] != major[1]  # the two clusters split the interior
    for m, c in zip((left, right), major, strict=True):
        assert (lab[m] == c).mean() > 0.9
    assert (lab[valid] < 2).all()  # the edge ring is labelled too, only nodata is 255
    assert (lab[~valid] == 255).all()
