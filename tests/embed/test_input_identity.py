"""A feature raster records its input by content (`GEODINO_INPUT_IDENTITY`: size and the sha256 of the first 64 KiB,
`provenance.file_identity`) beside its path: `in.tif` months later may be other imagery. Metadata only: the resume
record leaves it out, so outputs of earlier versions still resume."""

from __future__ import annotations

import rasterio
import rasterio.shutil

from geodino.embed import embed_raster
from geodino.embed.config import EmbedConfig
from geodino.embed.prepare import prepare
from geodino.embed.provenance import file_identity
from tests.embed.conftest import random_image, write_tif


def test_the_input_is_recorded_by_content_in_the_metadata_not_the_resume_record(tmp_path, conv_bb):
    scene = write_tif(tmp_path / "in.tif", random_image(24, 24))
    out = embed_raster(scene, conv_bb, tmp_path / "f.tif", tile=16, overlap=4, progress=False)
    with rasterio.open(out) as ds:
        assert ds.tags()["GEODINO_INPUT_IDENTITY"] == file_identity(scene)
    prep = prepare(str(scene), EmbedConfig(out=str(tmp_path / "g.tif"), tile=16, overlap=4), conv_bb)
    assert prep.meta["input_identity"] == file_identity(scene)
    assert "input_identity" not in prep.ident  # a partial output of an earlier version resumes as before

    vrt = tmp_path / "in.vrt"  # a VRT holds its sources' paths, not the pixels: no identity
    with rasterio.open(scene) as src:
        rasterio.shutil.copy(src, vrt, driver="VRT")
    prep = prepare(str(vrt), EmbedConfig(out=str(tmp_path / "h.tif"), tile=16, overlap=4), conv_bb)
    assert "input_identity" not in prep.meta


def test_a_product_repeats_the_input_identity_of_its_feature_raster(tmp_path, conv_bb):
    from geodino.embed import pca_map

    scene = write_tif(tmp_path / "in.tif", random_image(24, 24))
    feats = embed_raster(scene, conv_bb, tmp_path / "f.tif", tile=16, overlap=4, progress=False)
    with rasterio.open(pca_map(feats, tmp_path / "p.tif")) as ds:
        assert ds.tags()["GEODINO_SOURCE_INPUT_IDENTITY"] == file_identity(scene)


def test_a_scene_mosaic_claims_no_single_input_identity(tmp_path):
    from geodino.data.vrt import mosaic_vrt
    from tests.embed.test_mosaic_input_tags import A, B, scene, vrt_tags

    a = scene(tmp_path / "a.tif", 500000.0, 4000000.0, A, GEODINO_INPUT_IDENTITY="10 bytes, sha256 of ... aa")
    b = scene(tmp_path / "b.tif", 500200.0, 3999920.0, B, GEODINO_INPUT_IDENTITY="10 bytes, sha256 of ... bb")
    first = vrt_tags(a) | {"GEODINO_INPUT": "mosaic of 2 scenes"}  # what embed's scene run passes
    assert "GEODINO_INPUT_IDENTITY" not in vrt_tags(mosaic_vrt([a, b], tmp_path / "m.vrt", metadata=first))


def test_input_identity_is_the_files_content_and_none_for_a_vrt(tmp_path):
    from geodino.embed.provenance import file_identity, input_identity

    (tmp_path / "in.tif").write_bytes(b"II*\x00" + b"x" * 100)
    (tmp_path / "in.VRT").write_text("<VRTDataset/>")  # its sources' paths, not pixels
    assert input_identity(tmp_path / "in.tif") == file_identity(tmp_path / "in.tif") is not None
    assert input_identity(tmp_path / "in.VRT") is None and input_identity(tmp_path) is None
