"""The products' numeric keywords from Python (or a YAML a caller reads): classify_map's folds, neighbors,
max_cells, cv_gap and seed, pca_map's and cluster_map's k, sample and seed, change_map's threshold are read as
`EmbedConfig.validate` reads embed's options (whole numbers as 5, 5.0, "5" or a numpy integer alike); a value that is
not one, or is out of range, is one GeoDinoError line naming the CLI flag and the keyword (API audit: folds="3" was
a TypeError deep in scikit-learn, seed=-1 numpy's ValueError, sample=0 "fewer than 3 valid pixels")."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.embed import cluster_map, pca_map
from geodino.embed.change import change_map
from geodino.embed.classify import classify_map
from geodino.errors import ConfigError, GeoDinoError, InputError
from tests.embed.test_classify import feature_raster, polygons, stripes


@pytest.fixture
def fitted(tmp_path):
    return feature_raster(tmp_path / "f.tif", stripes()), polygons(tmp_path / "lab.gpkg")


def test_classify_numbers_as_text_or_numpy_give_the_same_map(tmp_path, fitted):
    feats, lab = fitted
    ints = dict(method="knn", neighbors=3, folds=2, max_cells=50, cv_gap=1, seed=0)
    texts = dict(method="knn", neighbors="3", folds=" 2 ", max_cells="50", cv_gap="1", seed="0")
    numpy = dict(method="knn", neighbors=np.int64(3), folds=np.int32(2), max_cells=50.0, cv_gap=np.uint8(1), seed=0)
    runs = [classify_map(feats, lab, tmp_path / f"m{i}.tif", column="landcover", **kw) for i, kw in
            enumerate((ints, texts, numpy))]  # fmt: skip
    assert runs[0]["cv"]["folds"] == 2 and all(r["cv"] == runs[0]["cv"] for r in runs[1:])
    maps = [(tmp_path / f"m{i}.tif").read_bytes() for i in range(3)]
    assert maps[1] == maps[0] and maps[2] == maps[0]


@pytest.mark.parametrize(
    ("option", "value", "said"),
    [
        ("folds", "1", r"^--folds 1: cross-validation needs at least 2 folds .*\(folds= in Python\)$"),
        ("neighbors", 0, r"^--neighbors 0: the kNN classifier needs at least 1 neighbour .*neighbors= in Python\)$"),
        ("max_cells", "0", r"^--max-cells 0: sample at least 1 cell per label polygon .*max_cells= in Python\)$"),
        ("cv_gap", "-1", r"^--cv-gap -1: give a distance in cells >= 0 .*cv_gap= in Python\)$"),
        ("seed", -1, r"^--seed -1: give a whole number >= 0 \(default 0; seed= in Python\)$"),
        ("method", "svm", r"^--method 'svm' is not one of logreg, knn \(method= in Python\)$"),
        ("folds", "five", r"^folds must be a whole number \(e\.g\. folds=5\), got 'five'$"),
        ("neighbors", 2.5, r"^neighbors must be a whole number"),
        ("max_cells", True, r"^max_cells must be a whole number"),
    ],
)
def test_classify_bad_numbers_are_one_line_before_any_file_is_read(tmp_path, option, value, said):
    with pytest.raises(ConfigError, match=said):
        classify_map(tmp_path / "missing.tif", tmp_path / "missing.gpkg", tmp_path / "m.tif", column="c",
                     **{option: value})  # fmt: skip
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize(
    ("call", "said"),
    [
        (
            lambda f, o: pca_map(f, o, sample="0"),
            r"^--sample 0: fit on at least 3 sampled cells .*sample= in Python\)$",
        ),
        (lambda f, o: pca_map(f, o, seed="-1"), r"^--seed -1: give a whole number >= 0 .*seed= in Python\)$"),
        (
            lambda f, o: cluster_map(f, o, k="1"),
            r"^k=1 clusters \(--k 1\): choose between 2 and 255 \(uint8 codes 0\.\.254; 255 is nodata\)$",
        ),
        (lambda f, o: cluster_map(f, o, k=4, sample=3), r"^--sample 3: fit on at least 4 sampled cells \(one per "),
        (lambda f, o: cluster_map(f, o, seed=-2), r"^--seed -2: "),
    ],
)
def test_pca_and_cluster_bad_numbers_are_one_line(tmp_path, call, said):
    with pytest.raises(GeoDinoError, match=said):
        call(tmp_path / "missing.tif", tmp_path / "o.tif")


def test_pca_and_cluster_numbers_as_text_or_numpy(tmp_path):
    import rasterio

    feats = feature_raster(tmp_path / "f.tif", stripes())
    pca_map(feats, tmp_path / "a.tif", sample="500", seed=np.int64(1))
    pca_map(feats, tmp_path / "b.tif", sample=500, seed=1)
    assert (tmp_path / "a.tif").read_bytes() == (tmp_path / "b.tif").read_bytes()
    cluster_map(feats, tmp_path / "c.tif", k=np.int64(3), sample=np.float64(500.0), seed="0")
    with rasterio.open(tmp_path / "c.tif") as ds:
        assert ds.tags()["GEODINO_KMEANS_K"] == "3"


def test_change_threshold_as_text(tmp_path):
    f = feature_raster(tmp_path / "f.tif", stripes())
    with pytest.warns(UserWarning, match=r"the change mask is empty"):
        s = change_map(f, f, tmp_path / "c.tif", threshold=" 0.5 ")
    assert s["threshold"] == 0.5 and s["method"] == "given"
    with pytest.raises(InputError, match=r"^--threshold 2\.5 must lie in \[0, 2\] .*\(threshold= in Python\)$"):
        change_map(f, f, tmp_path / "d.tif", threshold="2.5")


def test_flags_and_numbers_as_text_or_numpy_are_read_as_the_cli_reads_them(tmp_path):
    """`overwrite="false"` replaced an existing output (bool("false") is True) in every Python writer that checks
    its output with `geodino.io.check_writable`; numpy whole numbers are whole numbers (`geodino.config.whole_number`
    took Python numbers only, so `k=np.int64(8)` was refused where 8 was taken)."""
    import numpy as np

    from geodino.config import true_or_false, whole_number
    from geodino.errors import ConfigError, InputError
    from geodino.io import check_writable

    out = tmp_path / "x.tif"
    out.write_bytes(b"x")
    for no in ("false", "no", "0", 0, False):
        with pytest.raises(InputError, match="already exists"):
            check_writable(out, overwrite=no)
    assert check_writable(out, overwrite="true") == out
    with pytest.raises(ConfigError, match=r"^overwrite must be true or false"):
        check_writable(out, overwrite="maybe")
    assert [whole_number(v, "k") for v in (np.int64(8), np.uint8(8), np.float32(8.0), "8", 8.0)] == [8] * 5
    with pytest.raises(ConfigError, match=r"^k must be a whole number"):
        whole_number(np.float64(8.5), "k")
    assert [true_or_false(v, "f") for v in ("Yes", " off ", np.int64(1), 0)] == [True, False, True, False]
