"""`embed classify` on imbalanced labels: balanced accuracy and macro F1 lead the console line and the PNG title
(plain accuracy after them), and a one-line warning names a class with < 10 % of the largest class's cells."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from geodino import cli
from geodino.embed import classify
from tests.embed.test_classify import T, feature_raster


def _imbalanced(tmp_path):
    """Two noisy classes: 'tree' (3 polygons of 12 x 8 cells, 288 cells) and 'ground' (6 single points, 6 cells)."""
    import geopandas as gpd
    from shapely.geometry import Point, box

    rng = np.random.default_rng(3)
    f = rng.normal(scale=1.0, size=(4, 30, 45)).astype(np.float32)
    f[0, :, 20:] += 1.2  # ground lies right of column 20, its features overlap the tree ones
    feats = feature_raster(tmp_path / "f.tif", f)
    geoms, names = [], []
    for r in (1, 11, 21):
        x0, y0 = T @ (2, r)
        geoms.append(box(x0, y0 - 40 * 8, x0 + 40 * 12, y0))
        names.append("tree")
    for c, r in ((22, 2), (30, 9), (40, 15), (25, 20), (35, 26), (43, 5)):
        geoms.append(Point(*(T @ (c + 0.5, r + 0.5))))
        names.append("ground")
    lab = tmp_path / "lab.gpkg"
    gpd.GeoDataFrame({"cover": names}, geometry=geoms, crs="EPSG:32633").to_file(lab)
    return feats, lab


def test_headline_is_balanced_accuracy_and_macro_f1_of_the_cv_predictions(tmp_path, capsys, monkeypatch):
    from sklearn.metrics import accuracy_score, balanced_accuracy_score, f1_score

    feats, lab = _imbalanced(tmp_path)
    seen: list[tuple[np.ndarray, np.ndarray]] = []
    real = classify.scores

    def spy(y_true, y_pred, classes):  # the out-of-fold predictions the CV scores
        seen.append((np.asarray(y_true).astype(str), np.asarray(y_pred).astype(str)))
        return real(y_true, y_pred, classes)

    monkeypatch.setattr(classify, "scores", spy)
    titles: list[str] = []
    import geodino.embed.quicklook as quicklook

    real_png = quicklook.classes_png
    monkeypatch.setattr(quicklook, "classes_png", lambda *a, **k: (titles.append(k["title"]), real_png(*a, **k))[1])
    out = tmp_path / "map.tif"
    with pytest.warns(UserWarning) as caught:  # the CLI shows it as one line "geodino: warning: ..."
        assert cli.main(["embed", "classify", str(feats), str(lab), "--column", "cover", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    (y, pred) = seen[0]
    ba = balanced_accuracy_score(y, pred)
    mf1 = f1_score(y, pred, average="macro")
    acc = accuracy_score(y, pred)
    assert abs(ba - acc) > 0.05  # the fixture is imbalanced enough for the two to differ
    m = json.loads(out.with_suffix(".metrics.json").read_text())["cv"]
    assert m["balanced_accuracy"] == pytest.approx(ba) and m["macro_f1"] == pytest.approx(mf1)
    expect = f"balanced {ba:.1%}, macro F1 {mf1:.2f}, plain {acc:.1%}"
    line = captured.out.strip()
    assert f"blocked CV accuracy ({m['folds']} folds): {expect}" in line, line
    assert titles[0].endswith(f"blocked CV accuracy: {expect}")
    # the headline numbers, parsed back, are sklearn's
    b, f1, a = re.search(r"balanced ([\d.]+)%, macro F1 ([\d.]+), plain ([\d.]+)%", line).groups()
    assert float(b) == pytest.approx(100 * ba, abs=0.051) and float(f1) == pytest.approx(mf1, abs=0.0051)
    assert float(a) == pytest.approx(100 * acc, abs=0.051)
    warns = [str(w.message) for w in caught if "imbalanced" in str(w.message)]
    assert len(warns) == 1
    assert re.search(r"class 'ground' has 6 labelled cells, 2\.1% of class 'tree' \(288\)", warns[0]), warns[0]
    assert "balanced accuracy and macro F1" in warns[0]


@pytest.mark.parametrize(("small", "warned"), [(9, True), (10, False), (50, False)])
def test_imbalance_warning_below_a_tenth_of_the_largest_class(small, warned):
    counts = {"a": {"cells": 100}, "b": {"cells": small}, "c": {"cells": 60}}
    w = classify.imbalance_warning(counts, "lab.gpkg")
    assert (w is not None) == warned
    if warned:
        assert "\n" not in w and "lab.gpkg" in w and f"class 'b' has {small} labelled cells, 9.0% of class 'a'" in w
