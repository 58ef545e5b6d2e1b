"""Products record the settings that made them, as a reproduction needs them: the seed and sample size of a PCA or
cluster map (the seed changes cluster labels, and maps of seeds 0 and 7 had the same tags), what a class map was
fitted on or loaded from (a fitted map and a `--model` map could not be told apart) with the run's options in its
metrics JSON, and the geodino version in an `embed images` GeoParquet."""

from __future__ import annotations

import json

import rasterio

from geodino.embed import cluster_map, pca_map
from geodino.embed.classify import classify_map
from geodino.embed.provenance import file_identity
from tests.embed.test_classify import feature_raster, polygons, stripes


def _tags(path):
    with rasterio.open(path) as ds:
        return ds.tags()


def test_pca_and_cluster_maps_record_their_seed_and_sample(tmp_path):
    feats = feature_raster(tmp_path / "f.tif", stripes())
    seven = _tags(cluster_map(feats, tmp_path / "k7.tif", k=3, seed=7, sample=500))
    zero = _tags(cluster_map(feats, tmp_path / "k0.tif", k=3))
    assert (seven["GEODINO_SEED"], seven["GEODINO_SAMPLE"]) == ("7", "500")
    assert (zero["GEODINO_SEED"], zero["GEODINO_SAMPLE"]) == ("0", "50000")  # the defaults, written out
    pca = _tags(pca_map(feats, tmp_path / "p.tif", seed=3, sample=400))
    assert (pca["GEODINO_SEED"], pca["GEODINO_SAMPLE"]) == ("3", "400")


def test_a_class_map_names_its_labels_or_its_model_and_the_metrics_its_options(tmp_path):
    feats = feature_raster(tmp_path / "f.tif", stripes())
    labels = polygons(tmp_path / "lab.geojson")
    fit = classify_map(feats, labels, tmp_path / "c.tif", column="landcover", method="knn", neighbors=3, seed=2)
    tags = _tags(tmp_path / "c.tif")
    assert tags["GEODINO_LABELS"] == str(labels) and tags["GEODINO_LABELS_IDENTITY"] == file_identity(labels)
    assert (tags["GEODINO_LABEL_COLUMN"], tags["GEODINO_CLASSIFIER"], tags["GEODINO_NEIGHBORS"]) == (
        "landcover",
        "knn",
        "3",
    )
    assert (tags["GEODINO_SEED"], tags["GEODINO_MAX_CELLS"]) == ("2", "1000")
    assert "GEODINO_CLASSIFIER_MODEL" not in tags and "GEODINO_LABEL_LAYER" not in tags
    settings = {"method": "knn", "neighbors": 3, "folds": 5, "cv_gap": 1, "max_cells": 1000, "seed": 2}
    assert fit["settings"] == settings
    assert json.loads((tmp_path / "c.metrics.json").read_text())["settings"] == settings

    model = tmp_path / "c.model.safetensors"
    applied = classify_map(feats, None, tmp_path / "m.tif", model=model)
    again = _tags(tmp_path / "m.tif")
    assert again["GEODINO_CLASSIFIER_MODEL"] == str(model)
    assert again["GEODINO_CLASSIFIER_MODEL_IDENTITY"] == file_identity(model)
    assert json.loads(again["GEODINO_CLASSIFIER_FITTED_ON"]) == {"features": str(feats), "labels": str(labels)}
    assert (again["GEODINO_CLASSIFIER"], again["GEODINO_NEIGHBORS"], again["GEODINO_LABEL_COLUMN"]) == (
        "knn",
        "3",
        "landcover",
    )
    assert "GEODINO_LABELS" not in again and "GEODINO_SEED" not in again  # the seed sampled no cell of this map
    assert applied["settings"] == {"max_cells": 1000, "seed": 0}

    logreg = classify_map(feats, labels, tmp_path / "l.tif", column="landcover")
    assert logreg["settings"]["neighbors"] is None and "GEODINO_NEIGHBORS" not in _tags(tmp_path / "l.tif")


def test_embed_images_records_the_geodino_version(tmp_path):
    from geodino import __version__
    from geodino.embed import embed_images
    from tests.embed.test_embed_images import SPEC, meta_of, rgb, save_png

    save_png(tmp_path / "chips" / "a.png", rgb(16, 16))
    out = embed_images(tmp_path / "chips", SPEC, tmp_path / "e.parquet", progress=False)
    meta = meta_of(out)
    assert meta["version"] == __version__
    assert "model_file_sha256" not in meta  # an arch: spec has no weights file
