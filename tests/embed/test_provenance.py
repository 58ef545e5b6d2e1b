"""Same inputs, same outputs, and outputs that say what made them: a feature raster embedded twice, or with settings
that do not change values (reader threads), is the same file byte for byte, and with another
batch size the same up to float round-off; a product
made twice from it is too, and records which feature raster it came from by content, not only by path (a path
names where a file was: `feats.tif` months later may be another run's raster)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geodino.embed import cluster_map, embed_raster, pca_map
from geodino.embed.provenance import file_identity
from tests.embed.conftest import random_image, two_regions, write_tif
from tests.embed.test_products import feature_raster

OPTS = dict(tile=32, overlap=8, progress=False)


def _read(path):
    with rasterio.open(path) as ds:
        return ds.read(), ds.tags()


@pytest.fixture(scope="module")
def scene(tmp_path_factory):
    return write_tif(tmp_path_factory.mktemp("scene") / "in.tif", random_image(40, 56))


def test_embedding_twice_or_by_other_batches_gives_the_same_file(tmp_path, scene, conv_bb):
    first = embed_raster(scene, conv_bb, tmp_path / "a.tif", **OPTS)
    again = embed_raster(scene, conv_bb, tmp_path / "b.tif", **OPTS)
    assert first.read_bytes() == again.read_bytes()  # no timestamp or path of the output in the COG
    threads = embed_raster(scene, conv_bb, tmp_path / "c.tif", read_threads=2, **OPTS)  # "the same for any count"
    assert threads.read_bytes() == first.read_bytes()
    # another batch size runs other torch kernels (oneDNN picks its convolution by batch shape): the same features
    # up to float round-off (2e-6 of values up to 6.6 with this toy), not bit for bit
    one = embed_raster(scene, conv_bb, tmp_path / "one.tif", batch_size=1, **OPTS)
    (a, _), (b, _) = _read(first), _read(one)
    np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-5)


def test_a_product_made_twice_is_the_same_file_and_names_its_features_by_content(tmp_path):
    feats = feature_raster(tmp_path / "f.tif", two_regions(0.05))
    with rasterio.open(feats, "r+") as ds:
        ds.update_tags(GEODINO_VERSION="0.0.9", GEODINO_INPUT_BANDS="[1, 2, 3]", GEODINO_INPUT_SCALE="x/255 (uint8)")
    maps = {}
    for name in ("a", "b"):
        maps[name] = (pca_map(feats, tmp_path / f"p{name}.tif"), cluster_map(feats, tmp_path / f"k{name}.tif", k=2))
    for first, again in zip(maps["a"], maps["b"], strict=True):
        assert first.read_bytes() == again.read_bytes()
    _, tags = _read(maps["a"][1])
    assert tags["GEODINO_SOURCE_FEATURES_IDENTITY"] == file_identity(feats)
    assert tags["GEODINO_SOURCE_FEATURES_IDENTITY"].startswith(f"{feats.stat().st_size} bytes, sha256 ")
    assert tags["GEODINO_SOURCE_VERSION"] == "0.0.9"  # the geodino that embedded the features
    assert tags["GEODINO_SOURCE_INPUT_BANDS"] == "[1, 2, 3]" and tags["GEODINO_SOURCE_INPUT_SCALE"] == "x/255 (uint8)"
    from geodino import __version__

    assert tags["GEODINO_VERSION"] == __version__  # the geodino that made the product

    # other features under the same path: the path tag is the same, the identity is not
    feature_raster(feats, two_regions(0.05)[::-1].copy())
    cluster_map(feats, tmp_path / "k_other.tif", k=2)
    _, other = _read(tmp_path / "k_other.tif")
    assert other["GEODINO_SOURCE_FEATURES"] == tags["GEODINO_SOURCE_FEATURES"]
    assert other["GEODINO_SOURCE_FEATURES_IDENTITY"] != tags["GEODINO_SOURCE_FEATURES_IDENTITY"]


def test_file_identity_is_content_not_path_and_none_for_what_is_no_file(tmp_path):
    a, b = tmp_path / "a.bin", tmp_path / "sub" / "b.bin"
    b.parent.mkdir()
    a.write_bytes(b"x" * 70000)
    b.write_bytes(b"x" * 70000)
    assert file_identity(a) == file_identity(b)  # a copy elsewhere is the same input
    b.write_bytes(b"x" * 70001)
    assert file_identity(a) != file_identity(b)  # the size counts beyond the hashed head
    assert file_identity(tmp_path) is None and file_identity(tmp_path / "missing.tif") is None
    assert file_identity("https://example.com/s.tif") is None and file_identity("/vsis3/b/s.tif") is None


def test_a_feature_raster_records_its_weights_files_own_sha256(tmp_path, scene):
    """The fingerprint hashes the file's sha256 with the options, so `sha256sum backbone.pth` cannot be checked
    against it; the file's own hash is recorded beside it (and no such tag for a spec without a file)."""
    import hashlib

    import torch

    from geodino.models import build_model
    from geodino.train.checkpointing import FORMAT

    model = build_model("vit_tiny", patch_size=8, in_chans=3, depth=1)
    state = {f"arch.teacher.backbone.{k}": v for k, v in model.state_dict().items()}
    ckpt = tmp_path / "backbone.pth"
    torch.save({"state_dict": state, "geodino": {"format": FORMAT, "backbone": model.config}}, ckpt)
    with pytest.warns(UserWarning, match="records no input normalisation"):
        _, tags = _read(embed_raster(scene, str(ckpt), tmp_path / "f.tif", **OPTS))
    assert tags["GEODINO_MODEL_FILE_SHA256"] == hashlib.sha256(ckpt.read_bytes()).hexdigest()
    assert tags["GEODINO_MODEL_FINGERPRINT"] != tags["GEODINO_MODEL_FILE_SHA256"]
    _, product = _read(pca_map(tmp_path / "f.tif", tmp_path / "pca.tif"))  # and a product made from them
    assert product["GEODINO_SOURCE_MODEL_FILE_SHA256"] == tags["GEODINO_MODEL_FILE_SHA256"]
    _, arch = _read(embed_raster(scene, "arch:vit_tiny?patch_size=8&depth=1", tmp_path / "a.tif", **OPTS))
    assert "GEODINO_MODEL_FILE_SHA256" not in arch


def test_a_shapefiles_identity_covers_its_dbf_and_a_geojsons_stays_its_file_identity(tmp_path):
    """The class column of a shapefile lives in its .dbf: another column under the same .shp is another labels set
    (the named file's identity alone stayed the same), while a GeoJSON keeps the identity recorded before."""
    import shutil

    import geopandas as gpd

    from geodino.embed.classify_outputs import map_record
    from geodino.embed.provenance import vector_identity
    from tests.embed.test_classify import polygons

    (tmp_path / "a").mkdir()
    (tmp_path / "b").mkdir()
    shp = polygons(tmp_path / "a" / "lab.shp")
    before, named_before = vector_identity(shp), file_identity(shp)
    assert before is not None and before.startswith("shapefile .shp .shx .dbf .prj")
    swapped = gpd.read_file(shp)
    swapped["landcover"] = swapped["landcover"].to_numpy()[::-1]  # same widths: the .dbf keeps its size
    swapped.to_file(tmp_path / "b" / "lab.shp")
    shutil.copyfile(tmp_path / "b" / "lab.dbf", shp.with_suffix(".dbf"))
    assert file_identity(shp) == named_before  # the .shp is as it was
    after = vector_identity(shp)
    assert after != before and after is not None
    tags = map_record(shp, "landcover", None, None, {"method": "logreg"}, neighbors=5, max_cells=10, seed=0)
    assert tags["GEODINO_LABELS_IDENTITY"] == after

    for part in list((tmp_path / "a").iterdir()):  # LAB.SHP, LAB.DBF...: the same parts, the same identity
        part.rename(part.with_name(part.name.upper()))
    assert vector_identity(tmp_path / "a" / "LAB.SHP") == after
    (tmp_path / "a" / "LAB.PRJ").unlink()  # no CRS any more: another labels set
    assert vector_identity(tmp_path / "a" / "LAB.SHP") not in (after, None)

    geojson = polygons(tmp_path / "lab.geojson")
    assert vector_identity(geojson) == file_identity(geojson) is not None  # as class maps recorded it before
    assert vector_identity(tmp_path / "missing.shp") is None and vector_identity(tmp_path) is None
