"""Product COGs (pca, cluster, similar, classify) name the feature raster and backbone they were computed from in
their GDAL metadata, under GEODINO_SOURCE_* names: before, none named its feature raster, and the classify map
carried GEODINO_MODEL_FINGERPRINT, the feature-raster marker, so `embed pca MAP.tif` took the class map for
features and ended in a scikit-learn ValueError traceback (`embed cluster` would have clustered class values)."""

from __future__ import annotations

import pytest
import rasterio

from geodino.embed import cluster_map, pca_map, similarity_map
from geodino.embed.classify import classify_map
from geodino.errors import InputError
from tests.embed.test_classify import TAGS, feature_raster, polygons, stripes

SOURCE = ("MODEL_FINGERPRINT", "MODEL_SPEC", "LAYERS", "LAYER_MODE", "INPUT")


@pytest.fixture
def products(tmp_path):
    tags = {**TAGS, "GEODINO_MODEL_SPEC": "arch:vit_small", "GEODINO_INPUT": "/data/scene.tif"}
    feats = feature_raster(tmp_path / "f.tif", stripes(), tags=tags)
    outs = {
        "pca": pca_map(feats, tmp_path / "pca.tif"),
        "cluster": cluster_map(feats, tmp_path / "k.tif", k=3),
        "similar": similarity_map(feats, tmp_path / "s.tif", point=(500000.0 + 40 * 20.5, 4000000.0 - 40 * 10.5)),
    }
    classify_map(feats, polygons(tmp_path / "lab.geojson"), tmp_path / "c.tif", column="landcover")
    outs["classify"] = tmp_path / "c.tif"
    return feats, tags, outs


def test_every_product_records_its_feature_raster_and_backbone(products):
    feats, tags, outs = products
    for name, out in outs.items():
        with rasterio.open(out) as ds:
            got = ds.tags()
        assert got["GEODINO_SOURCE_FEATURES"] == str(feats), name
        for key in SOURCE:
            assert got[f"GEODINO_SOURCE_{key}"] == tags[f"GEODINO_{key}"], (name, key)
        assert "GEODINO_MODEL_SPEC" not in got and "GEODINO_MODEL_FINGERPRINT" not in got, name
    with rasterio.open(outs["cluster"]) as ds:
        assert ds.tags()["GEODINO_KMEANS_K"] == "3"  # the product's own tags stay


def test_a_product_is_not_taken_for_a_feature_raster(products, tmp_path):
    _, _, outs = products
    for name, out in outs.items():
        for make in (pca_map, lambda f, o: cluster_map(f, o, k=2)):
            with pytest.raises(InputError, match="is not a feature raster from `geodino embed`"):
                make(out, tmp_path / "again" / f"{name}.tif")
    assert not (tmp_path / "again").exists() or not any((tmp_path / "again").iterdir())  # nothing written


def test_the_change_mask_names_what_was_compared(tmp_path):
    from geodino.embed.change import change_map
    from tests.embed.test_change import pair

    fa, fb, _, _ = pair(tmp_path)
    s = change_map(fa, fb, tmp_path / "c.tif", threshold=0.5)
    with rasterio.open(s["mask"]) as ds:
        tags = ds.tags()
    assert (tags["GEODINO_CHANGE_A"], tags["GEODINO_CHANGE_B"]) == (str(fa), str(fb))
    assert tags["GEODINO_RESAMPLED_B"] == "False" and tags["GEODINO_CHANGE_DISTANCE"] == str(tmp_path / "c.tif")
    assert tags["GEODINO_CHANGE_THRESHOLD"] == "0.500000" and "GEODINO_CHANGE" not in tags
