"""STAC items with one band per asset (Earth Search / Planetary Computer Sentinel-2 and Landsat layouts):
`--asset red,green,blue` stacks the assets per item into a VRT that is embedded like a pre-stacked GeoTIFF."""

from __future__ import annotations

import json
import warnings
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from geodino.embed import embed_raster, embed_scenes
from geodino.embed.stac import read_stac
from tests.embed.conftest import random_image, read_all, stac_item, write_tif

pytest.importorskip("pystac")

OPTS = {"tile": 32, "overlap": 8, "progress": False, "scale": 1e-4}
X0, Y0 = 500000.0, 4000000.0
# Sentinel-2 L2A: (Earth Search asset key, band name = Planetary Computer asset key, common name)
S2 = (("blue", "B02", "blue"), ("green", "B03", "green"), ("red", "B04", "red"), ("swir16", "B11", "swir16"))


def write_cog(path: Path, band: np.ndarray, res: float, x0: float = X0, crs: str = "EPSG:32633") -> Path:
    import rasterio

    profile = {"driver": "COG", "height": band.shape[0], "width": band.shape[1], "count": 1, "dtype": band.dtype}
    with rasterio.open(path, "w", crs=crs, transform=from_origin(x0, Y0, res, res), nodata=0, **profile) as dst:
        dst.write(band[None])
    return path


def s2_item(item_id: str, hrefs: dict[str, str], layout: str = "earth-search", jp2: bool = False) -> dict:
    """A Sentinel-2 item with one asset per band, keyed like Earth Search (`red`) or Planetary Computer (`B04`)."""
    assets = {}
    for es_key, name, common in S2:
        if es_key not in hrefs:
            continue
        key = es_key if layout == "earth-search" else name
        bands = [{"name": name, "common_name": common}]
        assets[key] = {"href": hrefs[es_key], "type": "image/tiff; application=geotiff", "eo:bands": bands}
        if jp2:  # Earth Search also lists each band as JPEG 2000 with the same eo:bands
            assets[f"{key}-jp2"] = {"href": hrefs[es_key], "type": "image/jp2", "eo:bands": bands}
    assets["thumbnail"] = {"href": "thumb.jpg", "type": "image/jpeg", "roles": ["thumbnail"]}
    return stac_item(item_id, assets)


def archive(tmp_path: Path, n: int = 2, **item_kw) -> tuple[Path, list[np.ndarray]]:
    """n items of 48x48 10 m blue/green/red COGs side by side; returns the ItemCollection and each item's stack."""
    (tmp_path / "cogs").mkdir(exist_ok=True)
    items, stacks = [], []
    for k in range(n):
        img = random_image(48, 48, c=3, seed=k, dtype="uint16")
        img[img == 0] = 1  # 0 is the COGs' nodata
        hrefs = {}
        for (es_key, _, _), band in zip(S2[:3], img):
            write_cog(tmp_path / "cogs" / f"S2_{k}_{es_key}.tif", band, 10, x0=X0 + 480 * k)
            hrefs[es_key] = f"cogs/S2_{k}_{es_key}.tif"
        items.append(s2_item(f"S2_{k}", hrefs, **item_kw))
        stacks.append(img)
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return path, stacks


@pytest.mark.parametrize(
    ("layout", "asset"),
    [("earth-search", "red,green,blue"), ("planetary-computer", "red,green,blue"), ("earth-search", "B04,B03,B02")],
)
def test_one_band_per_asset_items_embed_like_the_prestacked_geotiff(tmp_path, conv_bb, layout, asset):
    items, stacks = archive(tmp_path, layout=layout, jp2=True)
    scenes = read_stac(str(items), asset)
    keys = ["red", "green", "blue"] if layout == "earth-search" else ["B04", "B03", "B02"]
    assert [[k for k, _ in s.sources] for s in scenes] == [keys, keys]  # common/band names -> keys; the COG not jp2
    assert scenes[0].path == "" and Path(scenes[1].sources[0][1]) == (tmp_path / "cogs" / "S2_1_red.tif").resolve()
    out = tmp_path / "feats"
    (mosaic,) = embed_scenes(items, backbone=conv_bb, out=out, asset=asset, **OPTS)
    assert sorted(p.name for p in (out / "stacked").iterdir()) == ["S2_0.vrt", "S2_1.vrt"]
    for k, img in enumerate(stacks):
        t = from_origin(X0 + 480 * k, Y0, 10, 10)
        ref_in = write_tif(tmp_path / f"stacked_{k}.tif", img[[2, 1, 0]], transform=t, nodata=0)
        ref = embed_raster(ref_in, conv_bb, tmp_path / "ref" / f"{k}.tif", **OPTS)
        got, crs, t, *_ = read_all(out / f"S2_{k}.tif")
        np.testing.assert_array_equal(got, read_all(ref)[0])  # bit-equal to embedding the pre-stacked file
        assert (crs, t) == read_all(ref)[1:3]
    import rasterio

    with rasterio.open(out / "stacked" / "S2_1.vrt") as src:  # the VRT reads the COGs' pixels, bands in order
        assert src.descriptions == tuple(keys) and src.nodata == 0
        np.testing.assert_array_equal(src.read(), stacks[1][[2, 1, 0]])
    assert read_all(mosaic)[0].shape == (8, 12, 24)


def test_other_resolutions_are_resampled_onto_the_first_assets_grid(tmp_path, conv_bb, capsys):
    import rasterio

    cogs = tmp_path / "cogs"
    cogs.mkdir()
    ramp20 = np.tile((1000 + 100 * np.arange(24, dtype=np.uint16)), (24, 1))  # 20 m: a ramp along x
    red10 = np.kron(np.arange(1, 577, dtype=np.uint16).reshape(24, 24), np.ones((2, 2), np.uint16))  # 2x2 blocks
    write_cog(cogs / "swir16.tif", ramp20, 20)
    write_cog(cogs / "red.tif", red10, 10)
    write_cog(cogs / "green.tif", red10 + 7, 10)
    items = tmp_path / "items.json"
    item = s2_item("S", {"red": "cogs/red.tif", "green": "cogs/green.tif", "swir16": "cogs/swir16.tif"})
    items.write_text(json.dumps({"type": "FeatureCollection", "features": [item]}))

    out = tmp_path / "f10"
    embed_scenes(items, backbone=conv_bb, out=out, asset="red,swir16,green", **{**OPTS, "progress": True})
    assert "swir16 20 m -> 10 m bilinear (1 asset); list the finest band first" in capsys.readouterr().err
    with rasterio.open(out / "stacked" / "S.vrt") as src:  # a 10 m scene: swir16 interpolated linearly
        assert (src.width, src.res, src.tags()["GEODINO_STACK_RESAMPLED"]) == (
            48,
            (10, 10),
            "swir16 20 m -> 10 m bilinear",
        )
        data = src.read()
    np.testing.assert_array_equal(data[0], red10)
    cols = np.arange(2, 46)  # 10 m centres between 20 m centres: 1000 + 100 * ((c + 0.5) / 2 - 0.5)
    np.testing.assert_array_equal(data[1][:, cols], np.tile(1000 + 50 * cols - 25, (48, 1)))
    # the windowed run over the VRT equals embedding the whole resampled stack written out as one GeoTIFF
    ref_in = write_tif(tmp_path / "whole.tif", data, transform=from_origin(X0, Y0, 10, 10), nodata=0)
    ref = embed_raster(ref_in, conv_bb, tmp_path / "ref.tif", **OPTS)
    np.testing.assert_array_equal(read_all(out / "S.tif")[0], read_all(ref)[0])

    out = tmp_path / "f20"  # swir16 first: a 20 m scene, the 10 m bands averaged over 2x2 blocks
    embed_scenes(items, backbone=conv_bb, out=out, asset="swir16,red,green", **OPTS)
    with rasterio.open(out / "stacked" / "S.vrt") as src:
        assert (src.width, src.res) == (24, (20, 20))
        np.testing.assert_array_equal(src.read(), np.stack([ramp20, red10[::2, ::2], red10[::2, ::2] + 7]))


def test_remote_one_band_assets_stay_gdal_virtual_paths(tmp_path):
    from geodino.data.vrt import _source_name

    item = s2_item("R", {k: f"https://example.invalid/S2/R/{k.upper()}.tif" for k in ("red", "green", "blue")},
                   layout="planetary-computer")  # fmt: skip
    items = tmp_path / "items.json"
    items.write_text(json.dumps({"type": "FeatureCollection", "features": [item]}))
    (scene,) = read_stac(str(items), "red, green ,blue")  # parsing only: nothing is fetched
    assert scene.sources == [(k, f"/vsicurl/https://example.invalid/S2/R/{c}.tif")
                             for k, c in (("B04", "RED"), ("B03", "GREEN"), ("B02", "BLUE"))]  # fmt: skip
    assert _source_name(scene.sources[0][1]) == scene.sources[0][1]  # not folded by Path.resolve()
    assert _source_name("rel/b.tif") == str(Path("rel/b.tif").resolve())


def test_a_rerun_keeps_the_stack_files_and_resumes(tmp_path, conv_bb):
    items, _ = archive(tmp_path, n=1)
    out = tmp_path / "feats"
    embed_scenes(items, backbone=conv_bb, out=out, asset="red,green,blue", **OPTS)
    vrt = out / "stacked" / "S2_0.vrt"
    before = (vrt.stat().st_mtime_ns, (out / "S2_0.tif").stat().st_mtime_ns)
    embed_scenes(items, backbone=conv_bb, out=out, asset="red,green,blue", resume=True, **OPTS)
    assert (vrt.stat().st_mtime_ns, (out / "S2_0.tif").stat().st_mtime_ns) == before
    assert not [p for p in (out / "stacked").iterdir() if p.name.startswith(".")]


def test_resume_refuses_a_stack_of_other_assets(tmp_path, conv_bb):
    """A stacked scene's input is its VRT, whose name does not change with --asset: a resume with other assets is
    refused by the VRT's content, before anything is rewritten."""
    from geodino.errors import InputError

    items, _ = archive(tmp_path)
    out = tmp_path / "feats"
    embed_scenes(items, backbone=conv_bb, out=out, asset="red,green,blue", **OPTS)
    vrt = (out / "stacked" / "S2_0.vrt").read_text()
    (out / "S2_1.tif").unlink()
    with pytest.raises(InputError, match=r"scene S2_0 was started from other assets than this run's --asset .*S2_0\."
                       r"vrt differs\); rerun with the same --asset or pass --overwrite"):  # fmt: skip
        embed_scenes(items, backbone=conv_bb, out=out, asset="blue,green,red", resume=True, **OPTS)
    assert (out / "stacked" / "S2_0.vrt").read_text() == vrt and not (out / "S2_1.tif").exists()
    embed_scenes(items, backbone=conv_bb, out=out, asset="red,green,blue", resume=True, **OPTS)
    assert (out / "S2_1.tif").exists()


def _baseline_items(tmp_path: Path, stac11: bool = False) -> tuple[Path, np.ndarray]:
    """Two Sentinel-2 items of the same ground and reflectance: one before processing baseline 04.00 (DN =
    reflectance x 10^4, declared offset 0), one after (DN + 1000, declared offset -0.1), as Earth Search's
    sentinel-2-c1-l2a declares them in raster:bands (or STAC 1.1 bands with raster:scale / raster:offset)."""
    (tmp_path / "cogs").mkdir()
    refl = random_image(48, 48, c=3, seed=3, dtype="uint16").astype(np.int64) % 5000 + 1  # DN before 04.00
    items = []
    for k, add in enumerate((0, 1000)):
        hrefs = {}
        for (es_key, _, _), band in zip(S2[:3], refl):
            write_cog(tmp_path / "cogs" / f"B{k}_{es_key}.tif", (band + add).astype(np.uint16), 10)
            hrefs[es_key] = f"cogs/B{k}_{es_key}.tif"
        item = s2_item(f"S2_{k}", hrefs)
        for asset in item["assets"].values():
            if "eo:bands" in asset:
                rule = {"scale": 1e-4, "offset": -add * 1e-4}
                if stac11:
                    asset["bands"] = [{**asset.pop("eo:bands")[0], **{f"raster:{k}": v for k, v in rule.items()}}]
                else:
                    asset["raster:bands"] = [{"data_type": "uint16", "nodata": 0, **rule}]
        items.append(item)
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return path, refl


@pytest.mark.parametrize("stac11", [False, True])
def test_items_declaring_scale_and_offset_give_the_same_features_across_the_baseline_change(tmp_path, conv_bb, stac11):
    """A baseline-04.00 item (DN + 1000, offset -0.1) and an older one of the same reflectance: with each item's
    declared rule applied the two feature rasters are equal (the old code read both as DN / 10^4: +0.1 on one);
    `scale=` given by the user or stac_scale=false keeps the old reading."""
    items, _ = _baseline_items(tmp_path, stac11)
    opts = {k: v for k, v in OPTS.items() if k != "scale"}
    out = tmp_path / "declared"
    embed_scenes(items, backbone=conv_bb, out=out, asset="red,green,blue", **opts)
    a, b = read_all(out / "S2_0.tif")[0], read_all(out / "S2_1.tif")[0]
    np.testing.assert_allclose(a, b, atol=1e-5)
    import rasterio

    with rasterio.open(out / "S2_1.tif") as src:  # the rule is recorded with the features
        assert src.tags()["GEODINO_INPUT_SCALE"] == "x*0.0001-0.1 (band_scale/band_offset)"
    assert (out / "mosaic.vrt").exists()  # the two rules are one mosaic setting: each item's own
    for name, extra in (("user_scale", {"scale": 1e-4}), ("off", {"stac_scale": False})):
        folder = tmp_path / name
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # the dtype default without a rule says it assumes DN / 10000
            embed_scenes(items, backbone=conv_bb, out=folder, asset="red,green,blue", **{**opts, **extra})
        a, b = read_all(folder / "S2_0.tif")[0], read_all(folder / "S2_1.tif")[0]
        assert np.abs(a - b).max() > 1e-3  # +0.1 reflectance on one of them: other features


def test_band_scale_and_offset_on_a_raster_and_their_errors(tmp_path, conv_bb):
    """The same rule set by hand on a plain raster: equal to reading reflectance directly; a count that fits
    neither one value nor one per band, or a rule given twice, is refused in one line."""
    from geodino.embed.config import EmbedConfig
    from geodino.errors import ConfigError, InputError

    refl = random_image(48, 48, c=3, seed=5, dtype="uint16").astype(np.int64) % 5000 + 1
    t = from_origin(X0, Y0, 10, 10)
    dn = write_tif(tmp_path / "dn.tif", (refl + 1000).astype(np.uint16), transform=t, nodata=0)
    ref = write_tif(tmp_path / "ref.tif", (refl * 1e-4).astype(np.float32), transform=t, nodata=None)
    opts = {k: v for k, v in OPTS.items() if k != "scale"}
    got = embed_raster(dn, conv_bb, tmp_path / "dn_f.tif", band_scale=[1e-4], band_offset=[-0.1, -0.1, -0.1], **opts)
    want = embed_raster(ref, conv_bb, tmp_path / "ref_f.tif", **opts)
    np.testing.assert_allclose(read_all(got)[0], read_all(want)[0], atol=1e-5)
    with pytest.raises(InputError, match=r"band_scale/band_offset give 2/1 values but input .* has 3 bands read"):
        embed_raster(dn, conv_bb, tmp_path / "bad.tif", band_scale=[1e-4, 1e-4], **opts)
    with pytest.raises(ConfigError, match="scale and band_scale/band_offset both give"):
        EmbedConfig(scale=1e-4, band_offset=[-0.1]).validate()


def test_declared_rules_follow_a_bands_selection(tmp_path, conv_bb):
    """`bands=` picking 3 of an item's 4 stacked assets applies the declared rules of the bands picked, in that
    order: a swir16 band with its own offset (-0.2) read first still matches the older item (the rule of all 4 bands
    was applied to the 3 read: 'band_scale/band_offset give 4/4 values ... has 3 bands read')."""
    (tmp_path / "cogs").mkdir()
    refl = random_image(48, 48, c=4, seed=3, dtype="uint16").astype(np.int64) % 5000 + 1
    items = []
    for k, adds in enumerate(((0, 0, 0, 0), (1000, 1000, 1000, 2000))):
        hrefs = {}
        for (es_key, _, _), band, add in zip(S2, refl, adds):
            write_cog(tmp_path / "cogs" / f"B{k}_{es_key}.tif", (band + add).astype(np.uint16), 10)
            hrefs[es_key] = f"cogs/B{k}_{es_key}.tif"
        item = s2_item(f"S2_{k}", hrefs)
        for (es_key, _, _), add in zip(S2, adds):
            rule = {"data_type": "uint16", "nodata": 0, "scale": 1e-4, "offset": -add * 1e-4}
            item["assets"][es_key]["raster:bands"] = [rule]
        items.append(item)
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    opts = {k: v for k, v in OPTS.items() if k != "scale"}
    out = tmp_path / "picked"
    embed_scenes(path, backbone=conv_bb, out=out, asset="red,green,blue,swir16", bands=[4, 2, 1], **opts)
    a, b = read_all(out / "S2_0.tif")[0], read_all(out / "S2_1.tif")[0]
    np.testing.assert_allclose(a, b, atol=1e-5)


def test_band_offset_alone_is_refused_not_added_to_raw_dn(tmp_path, conv_bb):
    """docs/embed.md told Planetary Computer users to give band_offset=[-0.1] for Sentinel-2 of baseline >= 04.00;
    alone it was read as x * 1 - 0.1 (band_scale defaults to 1), so DN of 1000..6000 reached the backbone as
    'reflectance' without a word. An offset without band_scale is refused, as the probes' data_offset without
    data_scale; with band_scale=[1e-4] it is the documented rule."""
    from geodino.embed.config import EmbedConfig
    from geodino.errors import ConfigError

    with pytest.raises(ConfigError, match=r"band_offset=\[-0.1\] needs band_scale"):
        EmbedConfig(band_offset=[-0.1]).validate()
    refl = random_image(48, 48, c=3, seed=5, dtype="uint16").astype(np.int64) % 5000 + 1
    dn = write_tif(
        tmp_path / "dn.tif", (refl + 1000).astype(np.uint16), transform=from_origin(X0, Y0, 10, 10), nodata=0
    )
    opts = {k: v for k, v in OPTS.items() if k != "scale"}
    with pytest.raises(ConfigError, match="needs band_scale"):
        embed_raster(dn, conv_bb, tmp_path / "off.tif", band_offset=[-0.1], **opts)
    assert not (tmp_path / "off.tif").exists()
    EmbedConfig(band_scale=[1e-4], band_offset=[-0.1]).validate()


def test_items_that_declare_a_rule_beside_items_that_do_not_are_refused_up_front(tmp_path, conv_bb):
    """One item declaring raster:bands scale/offset, one not: read by two rules, the mosaic refused the mix only
    after both scenes were embedded (with advice to rerun with the same settings). Now refused before anything is
    written, naming one of each; one rule for all (--scale) runs."""
    from geodino.errors import InputError

    items, _ = _baseline_items(tmp_path)
    collection = json.loads(items.read_text())
    for asset in collection["features"][0]["assets"].values():
        asset.pop("raster:bands", None)
    items.write_text(json.dumps(collection))
    out = tmp_path / "feats"
    opts = {k: v for k, v in OPTS.items() if k != "scale"}
    with pytest.raises(InputError, match=r"1 of 2 STAC items declare .* \(raster:bands, e\.g\. S2_1\) and 1 do not"):
        embed_scenes(items, backbone=conv_bb, out=out, asset="red,green,blue", **opts)
    assert not out.exists() or not any(out.glob("*.tif"))
    embed_scenes(items, backbone=conv_bb, out=out, asset="red,green,blue", **opts, scale=1e-4)
    assert (out / "S2_0.tif").exists() and (out / "S2_1.tif").exists()
