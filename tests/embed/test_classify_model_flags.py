"""`embed classify --model M` applies M as it was fitted: the fitting options given with it (`--method knn`,
`--neighbors`, `--folds`, `--cv-gap`, `--save-model`) are refused in one line, exit 2, before anything is written
(they were ignored silently: `--method knn` mapped with M's logistic regression), and `--column`, `--layer`,
`--max-cells` and `--seed`, which then read only a `--test` layer, need one. A `--test` file beside LABELS picked
by `--layer` is read whole when it lacks that layer and has only one (it was refused for lacking the labels'
layer), and a test layer none of whose classes the model knows is refused (its scores read 0 %)."""

from __future__ import annotations

from pathlib import Path

import geopandas as gpd
import pytest

from geodino import cli
from geodino.embed.classify import classify_map
from geodino.errors import ConfigError, InputError
from tests.embed.test_classify import feature_raster, points, polygons, stripes


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> dict[str, Path]:
    """A feature raster of three stripes, its labels and a logistic-regression model fitted on them."""
    root = tmp_path_factory.mktemp("model_flags")
    feats = feature_raster(root / "f.tif", stripes())
    lab = polygons(root / "lab.gpkg", crs="EPSG:32633")
    classify_map(feats, lab, root / "fit.tif", column="landcover")
    test = points(root / "t.geojson", [(c, 12, f"class_{c // 15}") for c in (5, 20, 35)])
    return {"feats": feats, "labels": lab, "model": root / "fit.model.safetensors", "test": test, "root": root}


@pytest.mark.parametrize(
    ("flags", "said"),
    [
        (["--method", "knn"], "--method knn sets how a model is fitted"),
        (["--method", "logreg"], "drop --method, or fit a new model"),
        (["--neighbors", "3"], "--neighbors 3 sets how a model is fitted"),
        (["--folds", "3"], "drop --folds"),
        (["--cv-gap", "0"], "drop --cv-gap"),
        (["--save-model", "x.safetensors"], "--save-model x.safetensors saves a fitted model"),
        (["--column", "landcover"], "--column landcover with --model"),
        (["--layer", "a"], "applies to a --test layer only"),
        (["--max-cells", "5"], "add --test FILE or drop --max-cells"),
        (["--seed", "3"], "--seed 3 with --model"),
    ],
)
def test_fitting_flags_with_a_saved_model_are_one_line(capsys, monkeypatch, fitted, flags, said):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    out = fitted["root"] / "m.tif"
    code = cli.main(
        ["embed", "classify", str(fitted["feats"]), "--model", str(fitted["model"]), "--out", str(out), *flags]
    )
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and said in lines[0] and str(fitted["model"]) in lines[0], lines
    assert not out.exists() and not out.with_suffix(".png").exists()


def test_a_saved_model_maps_and_scores_a_test_layer_with_its_own_options(fitted):
    m = classify_map(
        fitted["feats"], None, fitted["root"] / "t.tif", model=fitted["model"], test=fitted["test"], max_cells=5
    )
    assert m["test"]["accuracy"] == 1.0 and m["model"] == str(fitted["model"])
    with pytest.raises(ConfigError, match=r"--method knn sets how .*\(method= in Python\)"):
        classify_map(fitted["feats"], None, fitted["root"] / "k.tif", model=fitted["model"], method="knn")


def test_a_test_file_without_the_labels_layer_is_read_whole(fitted, tmp_path):
    lab = tmp_path / "multi.gpkg"
    gdf = gpd.read_file(fitted["labels"])
    gdf.to_file(lab, layer="train")
    gdf.iloc[:1].to_file(lab, layer="other")
    m = classify_map(fitted["feats"], lab, tmp_path / "c.tif", column="landcover", layer="train", test=fitted["test"])
    assert m["test"]["n"] == 3 and m["test"]["accuracy"] == 1.0
    # a multi-layer test file must hold the layer: which of its layers is meant is not guessed
    with pytest.raises(InputError, match="has no layer 'train'; its layers: a, b"):
        two = tmp_path / "two.gpkg"
        gdf.to_file(two, layer="a")
        gdf.to_file(two, layer="b")
        classify_map(fitted["feats"], lab, tmp_path / "d.tif", column="landcover", layer="train", test=two)


def test_a_test_layer_of_other_classes_is_refused(fitted, tmp_path):
    test = gpd.read_file(fitted["test"])
    test["code"] = [3, 10, 11]
    test.to_file(tmp_path / "codes.gpkg")
    line = r"none of their classes in column 'code' \(3, 10, 11\) is a class of the mod.* \(column= in Python\)$"
    with pytest.raises(InputError, match=line):
        classify_map(fitted["feats"], None, tmp_path / "e.tif", model=fitted["model"], test=tmp_path / "codes.gpkg",
                     column="code")  # fmt: skip
    assert not (tmp_path / "e.tif").exists()
