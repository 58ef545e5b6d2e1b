"""What may mislead a reader of `embed classify` and `embed zonal` results (no cross-validation, imbalanced labels,
test labels on or next to training labels, polygons without an embedding) is a real warning (`UserWarning`,
`warnings.warn`): it was printed on stderr ("geodino: warning: ..."), so a Python caller could neither catch nor
filter it and got it even with warnings off. The command line still shows each as the same one line."""

from __future__ import annotations

import subprocess
import sys
import warnings
from pathlib import Path

import pytest

from geodino.embed.classify import classify_map
from geodino.embed.products import zonal_embeddings
from tests.embed.test_classify import cell_box, feature_raster, points, stripes

ROOT = Path(__file__).parents[2]
# class_1 labelled in one place only: no blocked CV; 1 of its cells against 12 of class_0: imbalanced
LABELS = [(c, r, "class_0") for c in (2, 8) for r in (6, 10, 14, 18, 22, 26)] + [(17, 6, "class_1")]
NO_CV = (
    "no cross-validation: class(es) class_1 lie in a single group of labels (blocked by label features within 1 "
    "cell(s) of each other); label each class in at least 2 places apart"
)
IMBALANCED = "imbalanced labels in {lab}: class 'class_1' has 1 labelled cells, 8.3% of class 'class_0' (12); "
ALL_NEAR = "all 13 test cells from {lab} lie on or within 1 cell(s) of training cells from {lab}; "
ZONAL = "1 of 2 polygons has no embedding ({'outside': 1}); first fids: 2 (the layer's feature ids, as QGIS shows them)"


def _zones(path: Path) -> Path:
    import geopandas as gpd

    gdf = gpd.GeoDataFrame({"name": ["in", "out"]}, geometry=[cell_box(5, 5), cell_box(200, 5)], crs="EPSG:32633")
    gdf.to_file(path)
    return path


def test_classify_warnings_are_user_warnings_not_stderr_lines(tmp_path, capsys):
    feats = feature_raster(tmp_path / "f.tif", stripes())
    lab = points(tmp_path / "p.gpkg", LABELS)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = classify_map(feats, lab, tmp_path / "a.tif", column="landcover", test=lab)
    assert "skipped" in m["cv"] and m["test"]["near_training"] == 13
    got = [(w.category, str(w.message)) for w in caught]
    assert [c for c, _ in got] == [UserWarning] * 3, got
    assert got[0][1] == NO_CV
    assert got[1][1].startswith(IMBALANCED.format(lab=lab)), got[1]
    assert got[2][1].startswith(ALL_NEAR.format(lab=lab)), got[2]
    assert "geodino: warning" not in capsys.readouterr().err
    with warnings.catch_warnings():  # a caller that turns warnings off hears nothing
        warnings.simplefilter("ignore")
        classify_map(feats, lab, tmp_path / "b.tif", column="landcover")
    assert capsys.readouterr().err == ""


def test_some_test_cells_near_training_is_a_warning(tmp_path):
    feats = feature_raster(tmp_path / "f.tif", stripes())
    train = [(c, r, f"class_{c // 15}") for c in (2, 8, 17, 25, 33, 40) for r in (6, 22)]
    lab = points(tmp_path / "p.gpkg", train)
    test = points(tmp_path / "t.gpkg", [(2, 6, "class_0"), (5, 14, "class_0"), (20, 14, "class_1")])
    with pytest.warns(UserWarning, match=r"^1 of 3 test cells from .*t\.gpkg lie on or within 1 cell\(s\) of training"):
        m = classify_map(feats, lab, tmp_path / "a.tif", column="landcover", test=test)
    assert m["test"]["independent"]["n"] == 2


def test_zonal_polygons_without_an_embedding_are_a_warning(tmp_path, capsys):
    feats = feature_raster(tmp_path / "f.tif", stripes())
    zones = _zones(tmp_path / "z.gpkg")
    capsys.readouterr()
    with pytest.warns(UserWarning) as caught:
        zonal_embeddings(feats, zones, tmp_path / "z.parquet")
    assert [str(w.message) for w in caught] == [ZONAL]
    assert capsys.readouterr().err == ""


def test_the_commands_show_each_warning_as_the_same_one_line(tmp_path):
    """In a process of its own, as a user runs it (pytest records warnings instead of showing them)."""
    feats = feature_raster(tmp_path / "f.tif", stripes())
    lab = points(tmp_path / "p.gpkg", LABELS)
    zones = _zones(tmp_path / "z.gpkg")
    classify = ["embed", "classify", str(feats), str(lab), "--column", "landcover", "--test", str(lab)]
    classify += ["--out", str(tmp_path / "a.tif")]
    zonal = ["embed", "zonal", str(feats), str(zones), "--out", str(tmp_path / "z.parquet")]
    script = f"import sys; from geodino.cli import main; sys.exit(main({classify!r}) or main({zonal!r}))"
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    err = proc.stderr.splitlines()
    assert len(err) == 4, proc.stderr  # nothing else: no source line, no "UserWarning"
    assert err[0] == f"geodino: warning: {NO_CV}"
    assert err[1].startswith(f"geodino: warning: {IMBALANCED.format(lab=lab)}"), err[1]
    assert err[2].startswith(f"geodino: warning: {ALL_NEAR.format(lab=lab)}"), err[2]
    assert err[3] == f"geodino: warning: {ZONAL}"
