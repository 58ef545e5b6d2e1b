"""STAC items with one band per asset (Earth Search / Planetary Computer Sentinel-2 and Landsat layouts):
`--asset red,green,blue` stacks the assets per item into a VRT that is embedded like a pre-stacked GeoTIFF."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rasterio.transform import from_origin

from geodino.embed import embed_raster, embed_scenes
from geodino.embed.stac import read_stac
from tests.embed.conftest import random_image, read_all, write_tif

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
    return {
        "type": "Feature",
        "stac_version": "1.0.0",
        "id": item_id,
        "geometry": None,
        "properties": {"datetime": "2024-06-01T00:00:00Z"},
        "links": [],
        "assets": assets,
        "stac_extensions": ["https://stac-extensions.github.io/eo/v1.1.0/schema.json"],
    }


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
