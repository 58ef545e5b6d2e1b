"""`embed classify`: labels -> cells, blocked cross-validation, the class COG, its side files, model reuse."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from geodino.embed.classify import blocked_cv, classify_map, sample_labels, scores
from geodino.embed.writers import EmbeddingReader
from geodino.errors import InputError

T = from_origin(500000.0, 4000000.0, 40.0, 40.0)
TAGS = {"GEODINO_MODEL_FINGERPRINT": "abc123", "GEODINO_LAYERS": "[11]", "GEODINO_LAYER_MODE": "concat"}


def feature_raster(path: Path, feats: np.ndarray, *, tags: dict | None = None, transform=T) -> Path:
    """A float32 feature raster with the backbone metadata `geodino embed` records (COG tags GEODINO_*)."""
    import rasterio

    d, h, w = feats.shape
    with rasterio.open(
        path, "w", driver="GTiff", height=h, width=w, count=d, dtype="float32", crs="EPSG:32633",
        transform=transform, nodata=np.nan,
    ) as dst:  # fmt: skip
        dst.write(feats.astype(np.float32))
        dst.update_tags(**(TAGS if tags is None else tags))
    return path


def stripes(seed: int = 0, noise: float = 0.3) -> np.ndarray:
    """Three vertical stripes of 15 columns, each around its own 8-d centre; a 3x3 nodata corner."""
    rng = np.random.default_rng(seed)
    centres = np.random.default_rng(0).normal(size=(3, 8))
    f = np.empty((8, 30, 45), np.float32)
    for k in range(3):
        f[:, :, 15 * k : 15 * (k + 1)] = centres[k][:, None, None]
    f += rng.normal(scale=noise, size=f.shape)
    f[:, :3, :3] = np.nan
    return f


def cell_box(col: int, row: int, ncol: int = 4, nrow: int = 3):
    from shapely.geometry import box

    x0, y0 = T @ (col, row)
    return box(x0, y0 - 40 * nrow, x0 + 40 * ncol, y0)


def polygons(path: Path, crs: str = "EPSG:4326") -> Path:
    """Two polygons per stripe (4x3 cells each), written in another CRS than the raster's."""
    import geopandas as gpd

    geoms = [cell_box(15 * k + 4, r) for k in range(3) for r in (5, 20)]
    names = [f"class_{k}" for k in range(3) for _ in (5, 20)]
    gpd.GeoDataFrame({"landcover": names}, geometry=geoms, crs="EPSG:32633").to_crs(crs).to_file(path)
    return path


def points(path: Path, cols_rows: list[tuple[int, int, str]]) -> Path:
    import geopandas as gpd
    from shapely.geometry import Point

    geoms = [Point(*(T @ (c + 0.5, r + 0.5))) for c, r, _ in cols_rows]
    gdf = gpd.GeoDataFrame({"landcover": [n for *_, n in cols_rows]}, geometry=geoms, crs="EPSG:32633")
    if path.suffix == ".parquet":
        gdf.to_parquet(path)
    else:
        gdf.to_file(path)
    return path


def test_polygon_labels_give_the_stripe_map_and_every_side_file(tmp_path):
    import rasterio

    feats = feature_raster(tmp_path / "f.tif", stripes())
    m = classify_map(feats, polygons(tmp_path / "lab.geojson"), tmp_path / "map.tif", column="landcover")
    assert m["classes"] == ["class_0", "class_1", "class_2"]
    assert m["train"]["class_1"] == {"cells": 24, "label_features": 2}  # 2 polygons x 4x3 cell centres
    with rasterio.open(tmp_path / "map.tif") as ds:
        cls, conf = ds.read()
        assert ds.count == 2 and ds.nodata == 255 and ds.transform == T and ds.crs == "EPSG:32633"
        assert json.loads(ds.tags()["GEODINO_CLASS_NAMES"]) == m["classes"]
        assert ds.descriptions == ("class", "confidence")
        assert ds.units == (None, "%")  # gdalinfo's "Unit Type: %" of the confidence band
        cmap = ds.colormap(1)
    truth = np.repeat(np.arange(3), 15)[None].repeat(30, 0)
    ok = np.ones((30, 45), bool)
    ok[:3, :3] = False
    assert (cls[~ok] == 255).all() and (conf[~ok] == 255).all()
    assert (cls[ok] == truth[ok]).mean() > 0.98
    assert conf[ok].min() >= 34 and conf[ok].max() <= 100  # top-of-3 probability in %
    assert len({cmap[0], cmap[1], cmap[2]}) == 3
    # side files: metrics, model, PNG, QGIS style naming the classes
    metrics = json.loads((tmp_path / "map.metrics.json").read_text())
    assert metrics["cv"]["folds"] == 2 and metrics["cv"]["accuracy"] > 0.95
    assert np.asarray(metrics["cv"]["confusion"]["matrix"]).sum() == 72
    assert (tmp_path / "map.model.safetensors").stat().st_size > 0 and (tmp_path / "map.png").stat().st_size > 0
    r = ET.parse(tmp_path / "map.qml").getroot().find("pipe/rasterrenderer")
    assert r.get("type") == "paletted" and r.get("band") == "1"
    labels = {e.get("value"): e.get("label") for e in r.iter("paletteEntry")}
    assert labels == {"0": "class_0", "1": "class_1", "2": "class_2"}


def test_points_in_a_geopackage_and_knn(tmp_path):
    feats = feature_raster(tmp_path / "f.tif", stripes())
    pts = [(c, r, f"class_{c // 15}") for c in (2, 8, 17, 25, 33, 40) for r in (6, 22)]
    lab = points(tmp_path / "pts.gpkg", pts)
    m = classify_map(feats, lab, tmp_path / "map.tif", column="landcover", method="knn", neighbors=3)
    assert m["train"]["class_2"] == {"cells": 4, "label_features": 4}
    assert m["cv"]["folds"] == 4 and m["cv"]["accuracy"] == 1.0


def test_point_sampling_reads_the_cell_under_each_point(tmp_path):
    import geopandas as gpd

    f = np.arange(2 * 5 * 6, dtype=np.float32).reshape(2, 5, 6)
    feats = feature_raster(tmp_path / "f.tif", f)
    lab = points(tmp_path / "p.parquet", [(1, 2, "a"), (4, 0, "b")])
    with EmbeddingReader(feats) as rd:
        x, y, g, cells = sample_labels(rd, gpd.read_parquet(lab), "landcover")
    np.testing.assert_array_equal(x, [[f[0, 2, 1], f[1, 2, 1]], [f[0, 0, 4], f[1, 0, 4]]])
    assert list(y) == ["a", "b"] and list(g) == [0, 1] and cells.tolist() == [[2, 1], [0, 4]]


def test_scores_against_hand_computed_values():
    s = scores(np.array(["a", "a", "b", "b"]), np.array(["a", "b", "b", "b"]), ["a", "b"])
    assert s["accuracy"] == 0.75
    assert s["f1"]["a"] == pytest.approx(2 / 3) and s["f1"]["b"] == pytest.approx(0.8)
    assert s["confusion"]["matrix"] == [[1, 1], [0, 2]]
    # a test class the model never saw counts as an error, never silently dropped
    s = scores(np.array(["a", "c"]), np.array(["a", "a"]), ["a", "b"])
    assert s["accuracy"] == 0.5 and s["confusion"]["labels"] == ["a", "b", "c"]


def test_cross_validation_is_blocked_by_label_feature():
    """Each label feature is a tight clump at a random place with a random class: cells of one clump predict each
    other perfectly, so an unblocked split scores ~100 %; blocked by feature it can only be near chance."""
    from sklearn.model_selection import KFold, cross_val_score

    from geodino.embed.classify import build_classifier

    rng = np.random.default_rng(0)
    n_groups, per = 20, 10
    centres = rng.normal(size=(n_groups, 16))
    x = np.repeat(centres, per, 0) + rng.normal(scale=0.01, size=(n_groups * per, 16))
    y = np.repeat(np.array(["a", "b"] * (n_groups // 2)), per)
    groups = np.repeat(np.arange(n_groups), per)
    naive = cross_val_score(
        build_classifier("knn", neighbors=3), x, y, cv=KFold(5, shuffle=True, random_state=0)
    ).mean()
    blocked = blocked_cv(x, y, groups, method="knn", neighbors=3, folds=5, seed=0)
    assert naive > 0.95
    assert blocked["accuracy"] < 0.75 and blocked["folds"] == 5
    one = blocked_cv(x[:20], y[:20], groups[:20], method="knn", neighbors=3, folds=5, seed=0)
    assert "skipped" in one and "class(es) a, b lie in a single group of labels" in one["skipped"]


def test_model_reuse_and_test_layer(tmp_path):
    import rasterio

    lab = polygons(tmp_path / "lab.gpkg")
    classify_map(feature_raster(tmp_path / "f.tif", stripes()), lab, tmp_path / "a.tif", column="landcover")
    other = feature_raster(tmp_path / "g.tif", stripes(seed=1))  # same backbone, another "scene"
    test = points(tmp_path / "t.geojson", [(c, 12, f"class_{c // 15}") for c in (5, 20, 35)])
    m = classify_map(other, None, tmp_path / "b.tif", model=tmp_path / "a.model.safetensors", test=test)
    assert m["test"]["accuracy"] == 1.0 and m["test"]["confusion"]["matrix"] == [[1, 0, 0], [0, 1, 0], [0, 0, 1]]
    assert not (tmp_path / "b.model.safetensors").exists()
    assert "cv" not in m and m["cv_at_fit"]["folds"] == 2  # the fit's CV scored the other raster: kept apart
    with rasterio.open(tmp_path / "b.tif") as ds:
        cls = ds.read(1)
    assert (cls[5:, :15] == 0).mean() > 0.95 and (cls[:, 30:] == 2).mean() > 0.95
    # another backbone's features: refused by fingerprint, before anything is written
    tags = dict(TAGS, GEODINO_MODEL_FINGERPRINT="ffff00")
    alien = feature_raster(tmp_path / "h.tif", stripes(), tags=tags)
    with pytest.raises(InputError, match="different backbones: backbone fingerprint abc123"):
        classify_map(alien, None, tmp_path / "c.tif", model=tmp_path / "a.model.safetensors")
    with pytest.raises(InputError, match="layers"):
        bad = feature_raster(tmp_path / "i.tif", stripes(), tags=dict(TAGS, GEODINO_LAYERS="[5]"))
        classify_map(bad, None, tmp_path / "d.tif", model=tmp_path / "a.model.safetensors")
    assert not (tmp_path / "c.tif").exists() and not (tmp_path / "d.tif").exists()


FLOAT = dict(TAGS, GEODINO_FINAL_NORM="true", GEODINO_L2_NORMALIZE="false")


def _old_model(tmp_path: Path, fitted_on: Path) -> Path:
    """A model file as classify wrote it before the identity held final_norm and l2_normalize (and before class
    codes and the sklearn version were recorded): the bundle written by hand around a freshly fitted classifier."""
    import joblib

    from geodino.embed.classifier_model import PICKLE_KIND
    from geodino.embed.classify import build_classifier

    x = np.concatenate([stripes()[:, 10, 15 * k : 15 * k + 10].T for k in range(3)])
    y = np.repeat([f"class_{k}" for k in range(3)], 10)
    bundle = {
        "kind": PICKLE_KIND,
        "classifier": build_classifier("logreg", neighbors=5, n_train=len(y), seed=0).fit(x, y),
        "classes": ["class_0", "class_1", "class_2"],
        "column": "landcover",
        "method": "logreg",
        "backbone": {"model_fingerprint": "abc123", "layers": "[11]", "layer_mode": "concat", "n_bands": 8},
        "fitted_on": {"features": str(fitted_on), "labels": str(tmp_path / "lab.gpkg")},
        "cv": {"folds": 2, "accuracy": 1.0},
    }
    joblib.dump(bundle, tmp_path / "old.model.joblib")
    return tmp_path / "old.model.joblib"


def test_a_model_saved_before_normalisation_was_recorded(tmp_path, capsys):
    """An old model (no final_norm / l2_normalize in its identity) takes them from the raster it was fitted on;
    when that raster is gone or holds other features, one line says how to fit it again."""
    from tests.test_bad_inputs import one_line_exit_2

    fitted = feature_raster(tmp_path / "fitted.tif", stripes(), tags=FLOAT)
    model = _old_model(tmp_path, fitted)
    other = feature_raster(tmp_path / "other.tif", stripes(seed=1), tags=FLOAT)
    with pytest.warns(UserWarning) as caught:  # the CLI shows it as one line "geodino: warning: ..."
        m = classify_map(other, None, tmp_path / "a.tif", model=model)
    assert m["classes"] == ["class_0", "class_1", "class_2"] and (tmp_path / "a.tif").exists()
    (said,) = [str(w.message) for w in caught if "predates recorded normalisation" in str(w.message)]
    assert f"using final_norm=true and l2_normalize=false from {fitted}" in said
    (pickle,) = [str(w.message) for w in caught if "is a pickle" in str(w.message)]  # one line, naming the re-save
    assert f"--save-model {model.with_suffix('.safetensors')} on this run" in pickle
    # the raster it was fitted on now holds another backbone's features, then is gone: one line, nothing written
    feature_raster(fitted, stripes(), tags=dict(FLOAT, GEODINO_MODEL_FINGERPRINT="ffff00"))
    argv = ("embed", "classify", other, "--model", model, "--out", tmp_path / "b.tif")
    remake = f"fit it again: geodino embed classify {fitted} {tmp_path / 'lab.gpkg'} --column landcover"
    line = one_line_exit_2(capsys, tmp_path, *argv, expect=(f"model {model} was saved by an older geodino", remake))
    assert "now holds other features" in line and f"--save-model {model} --overwrite" in line
    fitted.unlink()
    line = one_line_exit_2(capsys, tmp_path, *argv, expect=(f"({fitted}) is not there to read them from", remake))
    # a raster as old as the model (recording neither) is compared as before: accepted
    with pytest.warns(UserWarning, match="is a pickle"):
        m = classify_map(feature_raster(tmp_path / "g.tif", stripes(seed=2)), None, tmp_path / "c.tif", model=model)
    assert m["classes"] == ["class_0", "class_1", "class_2"]


def test_bad_label_files(tmp_path):
    feats = feature_raster(tmp_path / "f.tif", stripes())
    lab = polygons(tmp_path / "lab.geojson")
    with pytest.raises(InputError, match="no column 'landcovr'; did you mean 'landcover'"):
        classify_map(feats, lab, tmp_path / "m.tif", column="landcovr")
    one = points(tmp_path / "one.gpkg", [(2, 5, "a"), (3, 9, "a")])
    with pytest.raises(InputError, match="one class only \\('a'"):
        classify_map(feats, one, tmp_path / "m.tif", column="landcover")
    far = points(tmp_path / "far.gpkg", [(500, 5, "a"), (600, 9, "b")])
    with pytest.raises(InputError, match="none of the 2 labels cover a valid cell"):
        classify_map(feats, far, tmp_path / "m.tif", column="landcover")
    with pytest.raises(InputError, match="not both"):
        classify_map(feats, lab, tmp_path / "m.tif", column="landcover", model=tmp_path / "x.joblib")
    assert not list(tmp_path.glob("m.*"))


def test_model_that_is_not_a_saved_classifier(tmp_path):
    """A text file (pickle's "Memo value not found ..."), any other pickle, or a safetensors file without a
    geodino model in it: one line saying what to pass."""
    import joblib
    from safetensors.numpy import save_file

    feats = feature_raster(tmp_path / "f.tif", stripes())
    (tmp_path / "notes.txt").write_text("some notes about the model\nline 2\n")
    (tmp_path / "notes.joblib").write_text("some notes about the model\nline 2\n")
    joblib.dump({"kind": "something else"}, tmp_path / "other.joblib")
    save_file({"w": np.zeros(3, np.float32)}, str(tmp_path / "weights.safetensors"))
    save_file({"w": np.zeros(3)}, str(tmp_path / "meta.safetensors"), metadata={"geodino": '{"kind": "x"}'})
    names = ("notes.txt", "notes.joblib", "other.joblib", "weights.safetensors", "meta.safetensors")
    for name in names:
        with pytest.raises(InputError) as err:
            classify_map(feats, None, tmp_path / "m.tif", model=tmp_path / name)
        assert str(err.value) == (
            f"{tmp_path / name} is not a model written by `geodino embed classify` (a .safetensors file, or an "
            "older geodino's .joblib); pass the MAP.model.safetensors that `geodino embed classify FEATURES LABELS "
            "--column C --out MAP.tif` saved (or its --save-model path)"
        )
    assert not list(tmp_path.glob("m.*"))


def test_labels_in_a_multi_layer_geopackage(tmp_path, capsys):
    """No pyogrio "Specify layer parameter" warning; a missing column names the layer read and the layer that has
    it; a misspelt --layer lists the layers."""
    import warnings

    import geopandas as gpd

    feats = feature_raster(tmp_path / "f.tif", stripes())
    lab = tmp_path / "multi.gpkg"
    gpd.read_file(polygons(tmp_path / "lab.gpkg")).rename(columns={"landcover": "name"}).to_file(lab, layer="roads")
    gpd.read_file(tmp_path / "lab.gpkg").to_file(lab, layer="fields")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        with pytest.raises(InputError) as err:
            classify_map(feats, lab, tmp_path / "m.tif", column="landcover")
    assert not caught
    assert str(err.value).endswith(
        "(layer 'roads' of 2: roads, fields) have no column 'landcover'; columns: name; layer 'fields' has it: "
        "pass --layer fields (layer='fields' in Python)"
    )
    assert capsys.readouterr().err == ""  # the error names the layer read: no separate note (the CLI: one line)
    with pytest.raises(InputError, match=r"no layer 'feilds'; did you mean 'fields'\? its layers: roads, fields"):
        classify_map(feats, lab, tmp_path / "m.tif", column="landcover", layer="feilds")
    m = classify_map(feats, lab, tmp_path / "m.tif", column="landcover", layer="fields")
    assert m["classes"] == ["class_0", "class_1", "class_2"] and "layers" not in capsys.readouterr().err
    lab2 = tmp_path / "first.gpkg"  # the labels in the first layer: read, with a note naming the others
    gpd.read_file(tmp_path / "lab.gpkg").to_file(lab2, layer="fields")
    gpd.read_file(lab, layer="roads").to_file(lab2, layer="roads")
    with pytest.warns(UserWarning) as caught:  # the CLI shows it as one line "geodino: warning: ..."
        classify_map(feats, lab2, tmp_path / "m2.tif", column="landcover")
    notes = [str(w.message) for w in caught if "layers" in str(w.message)]
    assert notes == [
        f"labels file {lab2} has 2 layers (fields, roads); reading the first, 'fields'; pass --layer NAME for another"
    ]


def test_labels_whose_crs_cannot_place_them_raise_no_numpy_warnings(tmp_path):
    """Points in UTM metres declared as lon/lat reproject to inf: counted outside, without cast warnings."""
    import warnings

    import geopandas as gpd

    feats = feature_raster(tmp_path / "f.tif", stripes())
    pts = gpd.read_file(points(tmp_path / "p.gpkg", [(2, 5, "a"), (30, 9, "b")])).set_crs(
        "EPSG:4326", allow_override=True
    )
    pts.to_file(tmp_path / "wrong.gpkg")
    polys = gpd.read_file(polygons(tmp_path / "lab.gpkg", crs="EPSG:32633")).set_crs("EPSG:4326", allow_override=True)
    polys.to_file(tmp_path / "wrong_polys.gpkg")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for name, n in (("wrong.gpkg", 2), ("wrong_polys.gpkg", 6)):
            with pytest.raises(InputError, match=rf"none of the {n} labels cover a valid cell .*\({n} outside it"):
                classify_map(feats, tmp_path / name, tmp_path / "m.tif", column="landcover")
    assert not [w for w in caught if issubclass(w.category, RuntimeWarning)]


def test_cross_validation_lists_classes_in_the_maps_natural_order(tmp_path):
    """The CV confusion matrix, F1 and label groups listed the classes lexicographically (class_10 before class_2),
    while the map values, the metrics' classes and the legend use natural order: one order everywhere, and each
    row of the matrix is the class its label says (the stripes are told apart, so the diagonal holds the cells)."""
    import geopandas as gpd

    names = {0: "class_2", 1: "class_10", 2: "class_1"}  # stripe k -> class name
    geoms = [cell_box(15 * k + 4, r) for k in range(3) for r in (5, 20)]
    classes = [names[k] for k in range(3) for _ in (5, 20)]
    gdf = gpd.GeoDataFrame({"landcover": classes}, geometry=geoms, crs="EPSG:32633")
    gdf.to_file(tmp_path / "lab.gpkg")
    feats = feature_raster(tmp_path / "f.tif", stripes())
    m = classify_map(feats, tmp_path / "lab.gpkg", tmp_path / "map.tif", column="landcover")
    natural = ["class_1", "class_2", "class_10"]
    assert m["classes"] == natural
    cv = json.loads((tmp_path / "map.metrics.json").read_text())["cv"]
    assert cv["confusion"]["labels"] == natural
    assert list(cv["f1"]) == natural and list(cv["label_groups"]) == natural
    matrix = np.asarray(cv["confusion"]["matrix"])
    assert matrix.trace() == matrix.sum() == 72  # 24 cells per class, each on its own row and column
    direct = blocked_cv(
        np.repeat(np.eye(3), 4, 0), np.repeat(["class_10", "class_2", "class_1"], 4),
        np.arange(12) // 2, method="knn", neighbors=1, folds=2, seed=0,
    )  # fmt: skip
    assert direct["confusion"]["labels"] == natural and list(direct["label_groups"]) == natural
