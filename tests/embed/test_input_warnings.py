"""What `embed classify`, `zonal`, `change` and a many-scene `embed` leave out or assume (labels without a value or
off the raster, the first layer of a multi-layer file, an empty change mask, an old model's normalisation taken
from its raster, a foreign catalog.json, items an earlier run's catalog listed) is a real warning (`UserWarning`,
`warnings.warn`): it was printed on stderr ("geodino: warning: ..."), so a Python caller could neither catch nor
filter it and got it even with warnings off. The command line still shows each as the same one line."""

from __future__ import annotations

import json
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from geodino.embed.change import change_map
from geodino.embed.classify import classify_map
from geodino.embed.products import zonal_embeddings
from geodino.embed.stac_items import write_catalog
from tests.embed.test_classify import FLOAT, T, _old_model, cell_box, feature_raster, polygons, stripes

ROOT = Path(__file__).parents[2]
EMPTY_MASK = "no cell has a distance above 1.990; the change mask is empty"


def _labels(tmp_path: Path) -> Path:
    """Labels in the first of two layers, one of them without a value and one far off the raster."""
    import geopandas as gpd
    from shapely.geometry import Point

    gdf = gpd.read_file(polygons(tmp_path / "lab.gpkg"))
    extra = gpd.GeoDataFrame(
        {"landcover": [None, "class_0"]}, geometry=[cell_box(20, 12), Point(*(T @ (300.5, 5.5)))], crs="EPSG:32633"
    ).to_crs(gdf.crs)
    path = tmp_path / "multi.gpkg"
    gpd.GeoDataFrame(
        np.concatenate([gdf.values, extra.values]), columns=gdf.columns, geometry="geometry", crs=gdf.crs
    ).to_file(path, layer="fields")
    gdf.rename(columns={"landcover": "name"}).to_file(path, layer="roads")
    return path


def _label_messages(lab: Path, feats: Path) -> list[str]:
    return [
        f"labels file {lab} has 2 layers (fields, roads); reading the first, 'fields'; pass --layer NAME for another",
        f"1 of 8 labels in {lab} has no 'landcover' value or no geometry and are ignored",
        f"1 of 7 labels is ignored (1 outside {feats}, 0 only on nodata cells)",
    ]


def _zones_message(zones: Path) -> str:
    return (
        f"polygons file {zones} has 2 layers (roads, fields); reading the first, 'roads'; pass --layer NAME for another"
    )


def _zones(tmp_path: Path) -> Path:
    import geopandas as gpd

    path = tmp_path / "zones.gpkg"
    gpd.GeoDataFrame({"name": ["a"]}, geometry=[cell_box(5, 5)], crs="EPSG:32633").to_file(path, layer="roads")
    gpd.GeoDataFrame({"field": ["f"]}, geometry=[cell_box(5, 5)], crs="EPSG:32633").to_file(path, layer="fields")
    return path


def test_labels_left_out_and_the_first_layer_read_are_user_warnings(tmp_path, capsys):
    feats = feature_raster(tmp_path / "f.tif", stripes())
    lab = _labels(tmp_path)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        m = classify_map(feats, lab, tmp_path / "a.tif", column="landcover")
    assert m["classes"] == ["class_0", "class_1", "class_2"]
    assert [(w.category, str(w.message)) for w in caught] == [(UserWarning, t) for t in _label_messages(lab, feats)]
    assert all(Path(w.filename).name == "classify.py" for w in caught)  # attributed to the caller of the reader
    assert "geodino: warning" not in capsys.readouterr().err
    with warnings.catch_warnings():  # a caller that turns warnings off hears nothing
        warnings.simplefilter("ignore")
        classify_map(feats, lab, tmp_path / "b.tif", column="landcover")
    assert capsys.readouterr().err == ""


def test_the_first_of_several_polygon_layers_is_a_user_warning(tmp_path, capsys):
    feats = feature_raster(tmp_path / "f.tif", stripes())
    zones = _zones(tmp_path)
    capsys.readouterr()
    with pytest.warns(UserWarning) as caught:
        zonal_embeddings(feats, zones, tmp_path / "z.parquet")
    assert [str(w.message) for w in caught] == [_zones_message(zones)]
    assert capsys.readouterr().err == ""


def test_an_empty_change_mask_is_a_user_warning(tmp_path, capsys):
    a = feature_raster(tmp_path / "a.tif", stripes())
    b = feature_raster(tmp_path / "b.tif", stripes(seed=1))
    capsys.readouterr()
    with pytest.warns(UserWarning) as caught:
        summary = change_map(a, b, tmp_path / "c.tif", threshold=1.99)
    assert summary["changed_cells"] == 0
    assert [str(w.message) for w in caught] == [EMPTY_MASK]
    assert capsys.readouterr().err == ""


def test_an_old_models_normalisation_taken_from_its_raster_is_a_user_warning(tmp_path, capsys):
    fitted = feature_raster(tmp_path / "fitted.tif", stripes(), tags=FLOAT)
    other = feature_raster(tmp_path / "other.tif", stripes(seed=1), tags=FLOAT)
    model = _old_model(tmp_path, fitted)
    capsys.readouterr()
    with pytest.warns(UserWarning) as caught:
        classify_map(other, None, tmp_path / "a.tif", model=model)
    assert [str(w.message) for w in caught] == [
        f"model {model} predates recorded normalisation; using final_norm=true and l2_normalize=false from "
        f"{fitted}, the raster it was fitted on",
        f"model {model} is a pickle (joblib, as geodino saved models before): loading one can run any code, so load "
        f"only files you trust; save it as a safetensors model (no code) with --save-model "
        f"{model.with_suffix('.safetensors')} on this run (save_model= in Python), and pass that from now on",
    ]
    assert capsys.readouterr().err == ""


def _item(folder: Path, name: str) -> Path:
    path = folder / f"{name}.stac.json"
    path.write_text(json.dumps({"type": "Feature", "id": name, "links": []}))
    return path


def test_a_foreign_catalog_and_items_left_out_of_the_catalog_are_user_warnings(tmp_path, capsys):
    a, b = _item(tmp_path, "s0"), _item(tmp_path, "s1")
    assert write_catalog(tmp_path, [a, b]) == tmp_path / "catalog.json"
    capsys.readouterr()
    with pytest.warns(UserWarning) as caught:  # a rerun over fewer scenes into the same folder
        write_catalog(tmp_path, [a])
    assert [str(w.message) for w in caught] == [
        f"1 feature raster of an earlier run in {tmp_path} (e.g. s1.stac.json) is not among this run's scenes: left "
        "out of catalog.json and the mosaic; delete it or embed it again with the others"
    ]
    assert Path(caught[0].filename).name == Path(__file__).name  # the caller of write_catalog
    (tmp_path / "catalog.json").write_text('{"type": "Catalog", "id": "mine"}')
    with pytest.warns(UserWarning) as caught:
        assert write_catalog(tmp_path, [a]) is None
    assert [str(w.message) for w in caught] == [
        f"{tmp_path / 'catalog.json'} exists and is not geodino's; the scenes' STAC catalog is not written"
    ]
    assert json.loads((tmp_path / "catalog.json").read_text()) == {"type": "Catalog", "id": "mine"}
    assert capsys.readouterr().err == ""


def test_the_commands_show_each_warning_as_the_same_one_line(tmp_path):
    """In a process of its own, as a user runs it (pytest records warnings instead of showing them)."""
    feats = feature_raster(tmp_path / "f.tif", stripes())
    other = feature_raster(tmp_path / "g.tif", stripes(seed=1))
    lab, zones = _labels(tmp_path), _zones(tmp_path)
    runs = [
        ["embed", "classify", str(feats), str(lab), "--column", "landcover", "--out", str(tmp_path / "a.tif")],
        ["embed", "zonal", str(feats), str(zones), "--out", str(tmp_path / "z.parquet")],
        ["embed", "change", str(feats), str(other), "--threshold", "1.99", "--out", str(tmp_path / "c.tif")],
    ]
    script = f"import sys; from geodino.cli import main; sys.exit(max(main(argv) for argv in {runs!r}))"
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr
    zonal = (
        f"polygons file {zones} has 2 layers (roads, fields); reading the first, 'roads'; pass --layer NAME for another"
    )
    want = [*_label_messages(lab, feats), zonal, EMPTY_MASK]
    # nothing else: no source line, no "UserWarning"
    assert proc.stderr.splitlines() == [f"geodino: warning: {t}" for t in want], proc.stderr
