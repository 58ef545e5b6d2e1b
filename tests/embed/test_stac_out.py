"""`geodino embed` describes every feature raster it writes as a STAC item (`features.stac.json`), and a
many-scene run its folder as a catalog: read back with pystac, the grid, footprint, bands and backbone equal the
raster's (the footprint checked against corners transformed independently with pyproj), the hrefs resolve, and a
refused or killed run leaves no item."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from rasterio.transform import from_origin

from geodino import cli
from geodino.embed import embed_raster, embed_scenes
from geodino.embed.encoding import DEQUANT_RULE
from geodino.embed.stac_items import raster_item_path, write_raster_item
from tests.embed.conftest import random_image, write_tif
from tests.embed.test_stac_bands import archive

pystac = pytest.importorskip("pystac")
from pystac.extensions.projection import ProjectionExtension  # noqa: E402
from pystac.extensions.raster import RasterExtension  # noqa: E402

OPTS = {"tile": 32, "overlap": 8, "progress": False}


def _raster(path: Path):
    import rasterio

    with rasterio.open(path) as src:
        return src.crs, src.transform, src.width, src.height, list(src.descriptions), src.tags()


def _corners_4326(crs, transform, width: int, height: int) -> list[tuple[float, float]]:
    from pyproj import Transformer

    to = Transformer.from_crs(crs.to_wkt(), "EPSG:4326", always_xy=True)
    return [to.transform(*(transform * (c, r))) for c in (0, width) for r in (0, height)]


def test_the_cli_writes_an_item_with_the_rasters_grid_footprint_bands_and_backbone(tmp_path, capsys):
    import shapely

    from geodino.models import build_model
    from geodino.models.checkpoints import save_export

    src = write_tif(tmp_path / "rgb.tif", random_image(120, 152))
    model = build_model("vit_tiny", patch_size=8, depth=1)
    rec = {"sensor": "rgb8", "bands": ["red", "green", "blue"], "scale": 1 / 255, "mean": [0.4] * 3, "std": [0.2] * 3}
    save_export(tmp_path / "exp" / "bb.pth", model, dict(model.config), normalization=rec)
    out = tmp_path / "out" / "f.tif"
    assert (
        cli.main(["embed", str(src), "-b", str(tmp_path / "exp" / "bb.pth"), "--out", str(out), "tile=32", "overlap=8"])
        == 0
    )
    assert "stac" not in capsys.readouterr().err.lower()  # the run's last line still describes the raster
    item = pystac.Item.from_file(str(tmp_path / "out" / "f.stac.json"))
    crs, transform, width, height, names, tags = _raster(out)
    proj = ProjectionExtension.ext(item)
    assert proj.code == "EPSG:32633" and proj.shape == [height, width]
    assert proj.transform == list(transform)[:6] and proj.transform[0] == 80.0  # 10 m pixels x patch 8
    assert pystac.extensions.projection.ProjectionExtension.has_extension(item)
    from rasterio.crs import CRS

    assert CRS.from_wkt(proj.wkt2) == crs
    corners = _corners_4326(crs, transform, width, height)
    x0, y0, x1, y1 = item.bbox
    eps = 1e-9
    assert all(x0 - eps <= x <= x1 + eps and y0 - eps <= y <= y1 + eps for x, y in corners)
    assert min(x for x, _ in corners) == pytest.approx(x0, abs=1e-7)  # the bbox is tight, not padded
    geom = shapely.geometry.shape(item.geometry)
    assert all(geom.buffer(1e-9).contains(shapely.Point(c)) for c in corners)
    asset = item.assets["data"]
    assert asset.get_absolute_href() == str(out.resolve()) and asset.media_type.endswith("cloud-optimized")
    bands = RasterExtension.ext(asset).bands
    assert [b.properties["name"] for b in bands] == names and len(names) == model.embed_dim
    assert {b.data_type for b in bands} == {"float32"} and {b.nodata for b in bands} == {"nan"}
    assert bands[0].spatial_resolution == 80.0
    props = item.properties
    assert props["geodino:model_spec"] == tags["GEODINO_MODEL_SPEC"] == str(tmp_path / "exp" / "bb.pth")
    assert props["geodino:model_fingerprint"] == tags["GEODINO_MODEL_FINGERPRINT"]
    assert props["geodino:layers"] == json.loads(tags["GEODINO_LAYERS"]) and props["geodino:embed_dim"] == 192
    # the backbone's MLM item: derived_from with its mlm:name (the MLM spec's link for inference outputs)
    (link,) = [lk for lk in item.links if lk.rel == "derived_from"]
    assert link.get_absolute_href() == str((tmp_path / "exp" / "bb.stac.json").resolve())
    assert link.extra_fields["mlm:name"] == "geodino bb"
    assert abs(item.datetime.timestamp() - out.stat().st_mtime) < 2  # when the raster was finished
    assert props["geodino:datetime_source"] == "created"  # and it says so: not an acquisition time


def test_zarr_and_int8_items_describe_their_storage(tmp_path, conv_bb):
    src = write_tif(tmp_path / "rgb.tif", random_image(120, 152))
    z = embed_raster(src, conv_bb, tmp_path / "f.zarr", **OPTS)
    assert raster_item_path(z).is_file()  # embed_raster in Python writes the item too, as the CLI does
    item = pystac.Item.from_file(str(raster_item_path(z)))
    assert item.assets["data"].media_type == "application/vnd+zarr" and ProjectionExtension.ext(item).shape == [30, 38]
    assert [b.properties["name"] for b in RasterExtension.ext(item.assets["data"]).bands][:2] == ["E000", "E001"]
    assert "file:size" not in item.assets["data"].extra_fields  # a folder

    q = embed_raster(src, conv_bb, tmp_path / "q.tif", dtype="int8", **OPTS)
    item = pystac.Item.from_file(str(write_raster_item(q)))
    bands = RasterExtension.ext(item.assets["data"]).bands
    assert {b.data_type for b in bands} == {"int8"} and {b.nodata for b in bands} == {-128}
    assert all(b.scale is None and b.offset is None for b in bands)  # companding: no linear scale undoes it
    assert item.properties["geodino:dequantization"] == DEQUANT_RULE
    assert item.assets["data"].extra_fields["file:size"] == q.stat().st_size
    assert not [lk for lk in item.links if lk.rel == "derived_from"]  # a toy backbone object: no MLM item


def test_a_cog_and_a_store_of_one_name_keep_one_item_each(tmp_path, conv_bb):
    """docs/embed.md writes features.tif and then features.zarr into one folder: both owned features.stac.json, and
    the second run replaced the COG's item without a word. The store's item is features.zarr.stac.json; each item's
    data asset is its own raster."""
    src = write_tif(tmp_path / "rgb.tif", random_image(64, 64))
    cog = embed_raster(src, conv_bb, tmp_path / "features.tif", **OPTS)
    store = embed_raster(src, conv_bb, tmp_path / "features.zarr", **OPTS)
    assert raster_item_path(cog).name == "features.stac.json"
    assert raster_item_path(store).name == "features.zarr.stac.json"
    hrefs = {p.name: json.loads(p.read_text())["assets"]["data"]["href"] for p in tmp_path.glob("*.stac.json")}
    assert hrefs == {"features.stac.json": "./features.tif", "features.zarr.stac.json": "./features.zarr"}


def test_item_ids_are_unique_across_runs_and_stable_for_the_same_product(tmp_path, conv_bb):
    """Every single-raster run writes `features.tif`: a catalogue keyed on id must tell two backbones' (or two
    inputs') rasters apart, and the same product written again must keep its id."""
    src = write_tif(tmp_path / "rgb.tif", random_image(64, 64))
    other = write_tif(tmp_path / "rgb2.tif", random_image(64, 64, seed=1))

    def item_id(folder: str, bb, image: Path) -> str:
        out = embed_raster(image, bb, tmp_path / folder / "features.tif", **OPTS)
        return json.loads(raster_item_path(out).read_text())["id"]

    a, again = item_id("a", conv_bb, src), item_id("again", conv_bb, src)
    b = item_id("b", "arch:vit_tiny?depth=1&patch_size=8&seed=0", src)
    c = item_id("c", conv_bb, other)
    assert a == again and len({a, b, c}) == 3 and all(i.startswith("features-") for i in (a, b, c))


def test_item_ids_do_not_depend_on_how_proj_spells_the_crs(tmp_path, conv_bb, monkeypatch):
    """PROJ versions write the same CRS's WKT2 differently: a CRS with an authority code counts by that code, so a
    product written again on another machine keeps its id."""
    from geodino.embed import reader

    out = embed_raster(write_tif(tmp_path / "rgb.tif", random_image(64, 64)), conv_bb, tmp_path / "f.tif", **OPTS)
    before = json.loads(raster_item_path(out).read_text())

    class OtherSpelling:  # the raster's CRS, whose WKT2 another PROJ version words differently
        def __init__(self, crs):
            self.crs = crs

        def __getattr__(self, name):
            return getattr(self.crs, name)

        def to_wkt(self, *args, version=None, **kw):
            text = self.crs.to_wkt(*args, version=version, **kw)
            return text.replace("UTM zone 33N", "UTM Zone 33 North") if version else text

    real_init = reader.EmbeddingReader.__init__

    def init(self, *args, **kw):
        real_init(self, *args, **kw)
        self.crs = OtherSpelling(self.crs)

    monkeypatch.setattr(reader.EmbeddingReader, "__init__", init)
    after = json.loads(write_raster_item(out).read_text())
    assert after["properties"]["proj:wkt2"] != before["properties"]["proj:wkt2"]  # the spelling did change
    assert after["id"] == before["id"] and after["properties"]["proj:code"] == "EPSG:32633"


def test_item_ids_do_not_depend_on_where_the_input_or_the_output_folder_lies(tmp_path, conv_bb, monkeypatch):
    """The same input given as an absolute or a relative path, or a copy of it in another folder (another
    machine), is one product: one id. A same-named file with other pixels is another. A many-scene run's
    scenes are read through VRTs in the output folder: their ids must not follow that folder's path."""
    import shutil

    src = write_tif(tmp_path / "rgb.tif", random_image(64, 64))
    (tmp_path / "copy").mkdir()
    shutil.copy(src, tmp_path / "copy" / "rgb.tif")
    (tmp_path / "other").mkdir()
    write_tif(tmp_path / "other" / "rgb.tif", random_image(64, 64, seed=3))

    def item_id(folder: str, image) -> str:
        out = embed_raster(image, conv_bb, tmp_path / folder / "features.tif", **OPTS)
        return json.loads(raster_item_path(out).read_text())["id"]

    absolute = item_id("abs", src)
    monkeypatch.chdir(tmp_path)
    assert item_id("rel", "rgb.tif") == absolute == item_id("copy_out", tmp_path / "copy" / "rgb.tif")
    assert item_id("other_out", tmp_path / "other" / "rgb.tif") != absolute
    items, _ = archive(tmp_path, n=1)
    ids = []
    for folder in ("feats", "elsewhere/deeper/feats"):
        embed_scenes(items, backbone=conv_bb, out=tmp_path / folder, asset="red,green,blue", scale=1e-4, **OPTS)
        ids.append(json.loads((tmp_path / folder / "S2_0.stac.json").read_text())["id"])
    assert ids[0] == ids[1] and ids[0].startswith("S2_0-")


def test_a_footprint_across_the_antimeridian_gets_a_west_to_east_bbox(tmp_path, conv_bb):
    from pyproj import Transformer

    x180, _ = Transformer.from_crs("EPSG:4326", "EPSG:32660", always_xy=True).transform(180.0, 10.0)
    src = write_tif(
        tmp_path / "am.tif",
        random_image(48, 48),
        crs="EPSG:32660",
        transform=from_origin(x180 - 2000, 1107000, 100, 100),
    )
    out = embed_raster(src, conv_bb, tmp_path / "am_f.tif", **OPTS)
    item = pystac.Item.from_file(str(write_raster_item(out)))
    assert item.geometry["type"] == "MultiPolygon"  # split at +-180 (RFC 7946)
    west, south, east, north = item.bbox
    assert 179.9 < west < 180.0 and -180.0 < east < -179.9 and south < north
    corners = _corners_4326(*_raster(out)[:4])
    lons = [((x + 180.0) % 360.0) - 180.0 for x, _ in corners]
    assert all(x >= west - 1e-9 or x <= east + 1e-9 for x in lons)


def test_stac_scenes_get_items_linked_to_their_source_and_a_catalog(tmp_path, conv_bb):
    items, _ = archive(tmp_path, n=2)
    out = tmp_path / "feats"
    (mosaic,) = embed_scenes(items, backbone=conv_bb, out=out, asset="red,green,blue", scale=1e-4, **OPTS)
    catalog = pystac.Catalog.from_file(str(out / "catalog.json"))
    got = sorted(catalog.get_items(), key=lambda i: i.id)
    assert [i.id[:5] for i in got] == ["S2_0-", "S2_1-"]  # the scene and a digest of the product
    for k, item in enumerate(got):
        # a self-contained catalog: each item opened alone links up to it (root and parent)
        alone = pystac.Item.from_file(str(out / f"S2_{k}.stac.json"))
        for rel in ("root", "parent"):
            (up,) = [lk for lk in alone.links if lk.rel == rel]
            assert up.href == "./catalog.json" and up.get_absolute_href() == str((out / "catalog.json").resolve())
        assert item.datetime.isoformat() == "2024-06-01T00:00:00+00:00"  # the source item's
        assert item.properties["geodino:datetime_source"] == "stac"
        assert item.assets["data"].get_absolute_href() == str((out / f"S2_{k}.tif").resolve())
        # an ItemCollection's member has no file of its own: no source link (one to the collection, which is not
        # an item, would not resolve to a STAC item)
        assert not [lk for lk in item.links if lk.rel == "derived_from"]
        crs, transform, width, height, *_ = _raster(out / f"S2_{k}.tif")
        assert ProjectionExtension.ext(item).transform == list(transform)[:6]
        x0, _, x1, _ = item.bbox
        assert all(x0 - 1e-9 <= x <= x1 + 1e-9 for x, _ in _corners_4326(crs, transform, width, height))
    assert json.loads((out / "catalog.json").read_text())["geodino:feature_rasters"] == [mosaic.name]
    # a rerun onto the finished folder keeps them; a catalog.json that is not geodino's is never replaced
    (out / "catalog.json").write_text('{"type": "Catalog", "id": "mine"}')
    with pytest.warns(
        UserWarning, match=r"catalog\.json exists and is not geodino's; the scenes' STAC catalog is not written"
    ):
        embed_scenes(items, backbone=conv_bb, out=out, asset="red,green,blue", scale=1e-4, resume=True, **OPTS)
    assert json.loads((out / "catalog.json").read_text()) == {"type": "Catalog", "id": "mine"}
    assert raster_item_path(out / "S2_0.tif").exists()


def test_a_scene_redone_alone_keeps_its_links_up_to_the_catalog(tmp_path, conv_bb):
    """One scene of a finished many-scene run embedded again on its own (--overwrite): its rewritten item is still
    listed by catalog.json, so it keeps its root and parent links (the old code dropped them); an item the
    catalog does not list gets none."""
    items, _ = archive(tmp_path, n=2)
    out = tmp_path / "feats"
    embed_scenes(items, backbone=conv_bb, out=out, asset="red,green,blue", scale=1e-4, **OPTS)
    embed_raster(out / "stacked" / "S2_0.vrt", conv_bb, out / "S2_0.tif", overwrite=True, scale=1e-4, **OPTS)
    item = pystac.Item.from_file(str(out / "S2_0.stac.json"))
    for rel in ("root", "parent"):
        (up,) = [lk for lk in item.links if lk.rel == rel]
        assert up.get_absolute_href() == str((out / "catalog.json").resolve())
    catalog = pystac.Catalog.from_file(str(out / "catalog.json"))
    assert sorted(i.id[:5] for i in catalog.get_items()) == ["S2_0-", "S2_1-"]
    extra = embed_raster(out / "stacked" / "S2_1.vrt", conv_bb, out / "extra.tif", scale=1e-4, **OPTS)
    assert not [lk for lk in pystac.Item.from_file(str(raster_item_path(extra))).links if lk.rel == "parent"]


def test_a_rerun_over_fewer_scenes_unlinks_the_dropped_items_and_says_so(tmp_path, conv_bb):
    """A finished two-scene folder redone (--overwrite) with one scene: the catalog lists that one, and the other
    scene's item no longer links up to a catalog that does not list it (the old code left its root/parent links);
    a warning names it."""
    items, _ = archive(tmp_path, n=2)
    out = tmp_path / "feats"
    embed_scenes(items, backbone=conv_bb, out=out, asset="red,green,blue", scale=1e-4, **OPTS)
    fewer = tmp_path / "one.json"  # the same ItemCollection with its first item only, beside it (same hrefs)
    collection = json.loads(items.read_text())
    fewer.write_text(json.dumps({**collection, "features": collection["features"][:1]}))
    with pytest.warns(UserWarning) as caught:  # the CLI shows it as one line "geodino: warning: ..."
        embed_scenes(fewer, backbone=conv_bb, out=out, asset="red,green,blue", scale=1e-4, overwrite=True, **OPTS)
    (said,) = [str(w.message) for w in caught if "of an earlier run" in str(w.message)]
    assert said.startswith(f"1 feature raster of an earlier run in {out} (e.g. S2_1.stac.json) is not among")
    catalog = pystac.Catalog.from_file(str(out / "catalog.json"))
    assert [i.id[:5] for i in catalog.get_items()] == ["S2_0-"]
    dropped = json.loads((out / "S2_1.stac.json").read_text())
    assert not [lk for lk in dropped["links"] if lk["rel"] in ("root", "parent")]
    kept = pystac.Item.from_file(str(out / "S2_0.stac.json"))
    assert {lk.rel for lk in kept.links} >= {"root", "parent"}


def test_a_scene_from_an_item_file_links_to_it_relatively_and_the_link_resolves(tmp_path, conv_bb):
    items, _ = archive(tmp_path, n=1)
    one = tmp_path / "S2_0.json"  # the item as its own file (as a STAC API or a static catalog serves it)
    one.write_text(json.dumps(json.loads(items.read_text())["features"][0]))
    out = tmp_path / "feats"
    embed_scenes(one, backbone=conv_bb, out=out, asset="red,green,blue", scale=1e-4, **OPTS)
    item = pystac.Item.from_file(str(raster_item_path(out / "S2_0.tif")))
    (link,) = [lk for lk in item.links if lk.rel == "derived_from"]
    assert link.href == "../S2_0.json"  # relative: the two folders can move together
    assert pystac.Item.from_file(link.get_absolute_href()).id == "S2_0"


def test_global_rotated_and_non_epsg_grids_get_their_true_extent_and_code(tmp_path, conv_bb):
    from affine import Affine

    # a 0..360 global grid: the footprint splits at +-180 and the bbox is the whole globe, not [0, 0]
    src = write_tif(
        tmp_path / "g.tif", random_image(32, 64), crs="EPSG:4326", transform=from_origin(0, 90, 5.625, 5.625)
    )
    item = pystac.Item.from_file(str(raster_item_path(embed_raster(src, conv_bb, tmp_path / "g_f.tif", **OPTS))))
    assert item.bbox[0] == -180.0 and item.bbox[2] == 180.0
    # a rotated grid: proj:bbox is the envelope of all four corners (rasterio's bounds ignore the rotation)
    rot = Affine.translation(500000, 5000000) * Affine.rotation(30) * Affine.scale(10, -10)
    src = write_tif(tmp_path / "r.tif", random_image(64, 64), crs="EPSG:32633", transform=rot)
    out = embed_raster(src, conv_bb, tmp_path / "r_f.tif", **OPTS)
    _, transform, width, height, *_ = _raster(out)
    corners = [transform * (c, r) for c in (0, width) for r in (0, height)]
    want = [
        min(x for x, _ in corners),
        min(y for _, y in corners),
        max(x for x, _ in corners),
        max(y for _, y in corners),
    ]
    proj = ProjectionExtension.ext(pystac.Item.from_file(str(raster_item_path(out))))
    assert proj.bbox == pytest.approx(want)
    # a CRS with an ESRI code (Mollweide) keeps it
    src = write_tif(tmp_path / "m.tif", random_image(32, 32), crs="ESRI:54009", transform=from_origin(0, 0, 100, 100))
    out = embed_raster(src, conv_bb, tmp_path / "m_f.tif", **OPTS)
    assert ProjectionExtension.ext(pystac.Item.from_file(str(raster_item_path(out)))).code == "ESRI:54009"


def test_a_refused_or_killed_run_leaves_no_item(tmp_path, conv_bb, monkeypatch):
    src = write_tif(tmp_path / "rgb.tif", random_image(64, 64))
    out = tmp_path / "f.tif"
    out.write_bytes(b"not mine")
    spec = "arch:vit_tiny?depth=1&patch_size=8&seed=0"
    assert cli.main(["embed", str(src), "-b", spec, "--out", str(out)]) == 2  # exists, no --overwrite
    assert not raster_item_path(out).exists()

    import geodino.embed.writers as writers

    real = writers.store_to_cog

    def killed(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(writers, "store_to_cog", killed)  # killed while the COG is written
    code = cli.main(["embed", str(src), "-b", spec, "--out", str(tmp_path / "k.tif"), "tile=32", "overlap=8"])
    assert code == 130  # the CLI's answer to an interrupt
    assert not (tmp_path / "k.tif").exists() and not raster_item_path(tmp_path / "k.tif").exists()
    # many scenes: killed in the second scene, the first keeps its item, no catalog
    items, _ = archive(tmp_path, n=2)
    calls = {"n": 0}

    def second_killed(*args, **kwargs):
        calls["n"] += 1
        if calls["n"] == 2:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    monkeypatch.setattr(writers, "store_to_cog", second_killed)
    with pytest.raises(KeyboardInterrupt):
        embed_scenes(items, backbone=conv_bb, out=tmp_path / "feats", asset="red,green,blue", scale=1e-4, **OPTS)
    names = sorted(p.name for p in (tmp_path / "feats").iterdir() if p.name.endswith(".stac.json"))
    assert names == ["S2_0.stac.json"]


def test_a_raster_without_crs_gets_a_null_geometry(tmp_path, conv_bb):
    src = write_tif(tmp_path / "plain.tif", random_image(48, 48), crs=None)
    out = embed_raster(src, conv_bb, tmp_path / "plain_f.tif", allow_no_crs=True, **OPTS)
    item = pystac.Item.from_file(str(write_raster_item(out)))
    assert item.geometry is None and item.bbox is None  # STAC: a null geometry has no bbox
    assert ProjectionExtension.ext(item).code is None and ProjectionExtension.ext(item).shape == [12, 12]
