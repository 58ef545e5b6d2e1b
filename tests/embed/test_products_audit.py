"""Findings of the second GIS audit of the map products: each test fails on the code before its fix.

1 PCA / k-means samples read from the COG's overviews, 2 test-layer scores (macro F1, test cells on training
cells), 3 int8 cells with nodata in some bands.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodino.embed.writers import EmbeddingReader
from tests.embed.test_classify import feature_raster


def checkerboard(noise: float = 0.05) -> tuple[np.ndarray, np.ndarray]:
    """96 x 96 cells alternating two orthogonal 8-d vectors (e0, e1) like a checkerboard, plus noise."""
    rng = np.random.default_rng(0)
    a, b = np.eye(8, dtype=np.float32)[:2]
    chk = (np.add.outer(np.arange(96), np.arange(96)) % 2) == 0
    f = np.where(chk[None], a[:, None, None], b[:, None, None]) + rng.normal(scale=noise, size=(8, 96, 96))
    return f.astype(np.float32), chk


def with_average_overviews(path: Path) -> Path:
    """Overviews as `geodino embed` builds them for float COGs (`writers.downsample2`: 2x2 means)."""
    import rasterio
    from rasterio.enums import Resampling

    with rasterio.open(path, "r+") as ds:
        ds.build_overviews([2, 4], Resampling.average)
    return path


# -- 1: the PCA / k-means sample ---------------------------------------------------------------------------------


def test_sample_holds_cell_vectors_not_overview_means(tmp_path):
    """`sample` was a decimated read, which GDAL serves from the overviews: on a checkerboard of e0 and e1 every
    sampled vector was their mean (0.5, 0.5), a vector no cell holds. Now every sampled vector is a cell's."""
    f, _ = checkerboard()
    cog = with_average_overviews(feature_raster(tmp_path / "f.tif", f))
    with EmbeddingReader(cog) as rd:
        s = rd.sample(500, seed=0)
    assert len(s) == 500
    near_a, near_b = s[:, 0] > 0.7, s[:, 1] > 0.7  # the cells: (1, 0) or (0, 1) plus noise of 0.05
    assert (near_a ^ near_b).all()
    assert 0.4 < near_a.mean() < 0.6  # random cells: no lattice that lands on one colour of the board
    # every sampled vector is one of the raster's cells
    cells = f.reshape(8, -1).T
    assert all(np.abs(cells - v).max(axis=1).min() < 1e-6 for v in s[:20])


def test_pca_and_clusters_of_a_cog_with_overviews_match_the_same_features_without(tmp_path):
    """PCA's 2-98 % stretch was taken from the overview means: every value of the COG's PCA saturated (1 or
    255), against ~5 % for the same features without overviews; k-means was fitted on the means."""
    import rasterio

    from geodino.embed import cluster_map, pca_map

    f, chk = checkerboard()
    cog = with_average_overviews(feature_raster(tmp_path / "cog.tif", f))
    plain = feature_raster(tmp_path / "plain.tif", f)
    maps = {}
    for name, src in (("cog", cog), ("plain", plain)):
        with rasterio.open(pca_map(src, tmp_path / f"pca_{name}.tif", sample=500)) as ds:
            maps[name] = ds.read()
        with rasterio.open(cluster_map(src, tmp_path / f"k_{name}.tif", k=2, sample=500)) as ds:
            maps[name + "_k"] = ds.read(1)
    np.testing.assert_array_equal(maps["cog"], maps["plain"])
    saturated = np.isin(maps["cog"][0], (1, 255)).mean()
    assert saturated < 0.1  # the 2-98 % stretch of cell vectors clips ~4 % of PC1
    np.testing.assert_array_equal(maps["cog_k"], maps["plain_k"])
    k = maps["cog_k"]
    assert max((k == chk).mean(), (k != chk).mean()) == 1.0  # the two vectors are the two clusters


# -- 2: scores of a test layer ---------------------------------------------------------------------------------


def test_macro_f1_leaves_out_model_classes_the_test_layer_lacks():
    """A model of classes a, b, c scored on a test layer of a and b only, every cell right: macro F1 was 2/3
    (sklearn's zero_division=0 gave c an F1 of 0); c has no F1 (null) and the macro mean is over a and b."""
    from geodino.embed.classify import scores

    s = scores(np.array(["a", "a", "b"]), np.array(["a", "a", "b"]), ["a", "b", "c"])
    assert s["macro_f1"] == 1.0 and s["f1"] == {"a": 1.0, "b": 1.0, "c": None}
    # a class predicted but absent from the test layer is scored (F1 0: all its predictions are wrong)
    s = scores(np.array(["a", "a", "b"]), np.array(["a", "c", "b"]), ["a", "b", "c"])
    assert s["f1"] == {"a": pytest.approx(2 / 3), "b": 1.0, "c": 0.0}
    assert s["macro_f1"] == pytest.approx((2 / 3 + 1 + 0) / 3)
    # a test class the model never saw, and a model class b neither true nor predicted: (F1 a 2/3, c 0) / 2
    s = scores(np.array(["a", "c"]), np.array(["a", "a"]), ["a", "b"])
    assert s["f1"]["b"] is None and s["macro_f1"] == pytest.approx((2 / 3 + 0) / 2)


def test_a_test_layer_on_the_training_cells_is_flagged_and_scored_apart(tmp_path):
    """`--test` with the training labels themselves scored 100 % as "independent" without a word. Test cells on
    (or within --cv-gap cells of) a training cell are now counted, warned about and left out of
    `test.independent`."""
    from geodino.embed.classify import classify_map
    from tests.embed.test_classify import points, stripes

    feats = feature_raster(tmp_path / "f.tif", stripes())
    train = [(c, r, f"class_{c // 15}") for c in (2, 8, 17, 25, 33, 40) for r in (6, 22)]
    lab = points(tmp_path / "p.gpkg", train)
    with pytest.warns(UserWarning, match="^all 12 test cells from"):
        m = classify_map(feats, lab, tmp_path / "a.tif", column="landcover", test=lab)
    assert m["test"]["n"] == 12 and m["test"]["near_training"] == 12 and "independent" not in m["test"]
    # 3 training cells, 1 cell diagonal to a training cell (3, 7), 3 cells 8 rows from any training cell
    mixed = [(2, 6, "class_0"), (17, 6, "class_1"), (33, 6, "class_2"), (3, 7, "class_0")]
    far = [(5, 14, "class_0"), (20, 14, "class_1"), (36, 14, "class_1")]  # the last one labelled wrong
    test = points(tmp_path / "t.gpkg", mixed + far)
    with pytest.warns(UserWarning, match="^4 of 7 test cells from"):
        m = classify_map(feats, lab, tmp_path / "b.tif", column="landcover", test=test)
    assert m["test"]["near_training"] == 4 and m["test"]["n"] == 7
    ind = m["test"]["independent"]
    assert ind["n"] == 3 and ind["accuracy"] == pytest.approx(2 / 3)
    assert ind["confusion"]["matrix"] == [[1, 0, 0], [0, 1, 1], [0, 0, 0]]
    with pytest.warns(UserWarning, match="^3 of 7 test cells from"):
        m = classify_map(feats, lab, tmp_path / "c.tif", column="landcover", test=test, cv_gap=0)
    assert m["test"]["near_training"] == 3 and m["test"]["independent"]["n"] == 4  # (3, 7) only touches one
    json_metrics = (tmp_path / "c.metrics.json").read_text()
    assert '"near_training": 3' in json_metrics


# -- 3: int8 nodata in some bands ----------------------------------------------------------------------------------


def test_an_int8_cell_with_nodata_in_one_band_is_nodata(tmp_path):
    """A cell with -128 (nodata, never a code) in one band was valid with NaN features (the NaN spread through
    the re-normalisation): PCA stopped with sklearn's "Input X contains NaN", similarity wrote NaN as a value.
    It is nodata, as a float cell with NaN in any band is."""
    import rasterio

    from geodino.embed import pca_map
    from geodino.embed.encoding import quantize_int8
    from tests.embed.test_classify import TAGS, T

    v = np.random.default_rng(0).normal(size=(8, 10, 12))
    q = quantize_int8(v / np.linalg.norm(v, axis=0))
    q[0, 4, 5] = -128
    path = tmp_path / "i8.tif"
    with rasterio.open(path, "w", driver="GTiff", height=10, width=12, count=8, dtype="int8", crs="EPSG:32633",
                       transform=T, nodata=-128) as dst:  # fmt: skip
        dst.write(q)
        dst.update_tags(**TAGS, GEODINO_DTYPE="int8")
    with EmbeddingReader(path) as rd:
        f, valid = rd.read()
    assert not valid[4, 5] and valid.sum() == 119 and np.isfinite(f).all()
    with rasterio.open(pca_map(path, tmp_path / "p.tif")) as ds:
        rgb = ds.read()
    assert (rgb[:, 4, 5] == 0).all() and (rgb[:, valid] > 0).all()  # 0 = nodata, 1..255 data
