"""Sentinel-2 STAC items and the processing-baseline-04.00 offset (DN + 1000 from 2022-01-25 on):

- Planetary Computer's items declare no scale/offset but name `s2:processing_baseline`: the old code read every
  item as DN / 10000, 0.1 too high from 04.00 on, and an archive spanning the change as two distributions. Now the
  reflectance bands get the baseline's rule, (DN - 1000) / 10000 or DN / 10000;
- Earth Search's sentinel-2-l2a items say `earthsearch:boa_offset_applied: true` where their COGs were shifted back
  already, while raster:bands still declares offset -0.1 (Element84/earth-search#9: the property says what the
  pixels hold): the old code applied that offset to such pixels again, 0.1 too low. Now only the scale is."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from geodino import cli
from geodino.embed.stac import read_stac
from tests.embed.conftest import random_image, read_all
from tests.embed.test_stac_bands import S2, s2_item, write_cog

pytest.importorskip("pystac")

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
RUN = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1", "--asset", "B04,B03,B02"]


def items(tmp_path: Path, kinds: list[tuple[str, int, dict]], layout: str = "planetary") -> tuple[Path, np.ndarray]:
    """One item per (id, DN added, extra properties) of the same ground and reflectance (x 10^4), one COG per
    band (blue, green, red), keyed as Planetary Computer (`B04`) or Earth Search (`red`) key them."""
    (tmp_path / "cogs").mkdir(parents=True)
    refl = random_image(48, 48, c=3, seed=3, dtype="uint16").astype(np.int64) % 5000 + 1
    features = []
    for item_id, add, props in kinds:
        hrefs = {}
        for (es_key, _, _), band in zip(S2[:3], refl, strict=True):
            write_cog(tmp_path / "cogs" / f"{item_id}_{es_key}.tif", (band + add).astype(np.uint16), 10)
            hrefs[es_key] = f"cogs/{item_id}_{es_key}.tif"
        item = s2_item(item_id, hrefs, layout=layout)
        item["properties"].update(props)
        features.append(item)
    path = tmp_path / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": features}))
    return path, refl


def test_planetary_computer_items_get_their_baselines_rule(tmp_path):
    path, _ = items(
        tmp_path,
        [("old", 0, {"s2:processing_baseline": "03.01"}), ("new", 1000, {"s2:processing_baseline": "05.09"})],
    )
    old, new = read_stac(str(path), "B04,B03,B02")
    assert old.radiometry == [(1e-4, 0.0)] * 3 and new.radiometry == [(1e-4, -0.1)] * 3
    assert new.radiometry_from == "declared by its STAC item's s2:processing_baseline 05.09"
    (one,) = read_stac(str(path), "B04")[1:]  # one asset alone: the same rule
    assert one.radiometry == [(1e-4, -0.1)]
    (none,) = items(tmp_path / "x", [("plain", 0, {})])[:1]  # no baseline named: nothing known, as before
    assert read_stac(str(none), "B04,B03,B02")[0].radiometry is None
    data = json.loads(path.read_text())  # the 8-bit colour asset (TCI) names B04, B03, B02 too: no rule
    tci = [{"name": b, "common_name": c} for b, c in (("B04", "red"), ("B03", "green"), ("B02", "blue"))]
    for feature in data["features"]:
        feature["assets"]["visual"] = {"href": "cogs/tci.tif", "type": "image/tiff", "eo:bands": tci}
    path.write_text(json.dumps(data))
    assert read_stac(str(path), "visual")[1].radiometry is None


def test_an_asset_listing_no_bands_is_named_by_its_key_alone_as_when_stacked(tmp_path):
    """An item whose assets list no bands (no eo:bands): stacked, their keys (B04, B03, B02) named them reflectance
    bands and they got the baseline's rule; one such asset read alone got none (DN / 10000, 0.1 too high)."""
    path, _ = items(tmp_path, [("new", 1000, {"s2:processing_baseline": "05.09"})])
    data = json.loads(path.read_text())
    for asset in data["features"][0]["assets"].values():
        asset.pop("eo:bands", None)
    data["features"][0]["assets"]["visual"] = {"href": "cogs/tci.tif", "type": "image/tiff"}  # no rule: colour
    path.write_text(json.dumps(data))
    assert read_stac(str(path), "B04,B03,B02")[0].radiometry == [(1e-4, -0.1)] * 3
    assert read_stac(str(path), "B04")[0].radiometry == [(1e-4, -0.1)]
    assert read_stac(str(path), "visual")[0].radiometry is None


@pytest.mark.parametrize("applied", [True, False])
def test_earth_search_items_whose_pixels_hold_the_offset_are_not_shifted_twice(tmp_path, applied):
    path, _ = items(
        tmp_path, [("es", 0, {"s2:processing_baseline": "05.09", "earthsearch:boa_offset_applied": applied})], "es"
    )
    data = json.loads(path.read_text())
    for asset in data["features"][0]["assets"].values():  # as Earth Search publishes them, applied or not
        if "eo:bands" in asset:
            asset["raster:bands"] = [{"data_type": "uint16", "nodata": 0, "scale": 0.0001, "offset": -0.1}]
    path.write_text(json.dumps(data))
    (scene,) = read_stac(str(path), "red,green,blue")
    assert scene.radiometry == [(1e-4, 0.0 if applied else -0.1)] * 3
    said = "its pixels hold it" in scene.radiometry_from
    assert said is applied


def test_embed_reads_items_on_both_sides_of_the_change_as_one_reflectance(tmp_path, capsys):
    """End to end: equal features for the same ground before and after 04.00, each scene's line naming the rule
    and the property it came from (the old code: '(the default for uint16 input, assumed ...)' and other
    features for the later item)."""
    path, _ = items(
        tmp_path,
        [("S2_old", 0, {"s2:processing_baseline": "03.01"}), ("S2_new", 1000, {"s2:processing_baseline": "05.10"})],
    )
    out = tmp_path / "f"
    assert cli.main(["embed", str(path), "-b", SPEC, "--out", str(out), *RUN]) == 0
    lines = re.findall(r"geodino: input DN -> reflectance .*", capsys.readouterr().err)
    assert lines == [
        "geodino: input DN -> reflectance x*0.0001 (declared by its STAC item's s2:processing_baseline 03.01: "
        "band_scale/band_offset)",
        "geodino: input DN -> reflectance x*0.0001-0.1 (declared by its STAC item's s2:processing_baseline 05.10: "
        "band_scale/band_offset)",
    ]
    np.testing.assert_allclose(read_all(out / "S2_old.tif")[0], read_all(out / "S2_new.tif")[0], atol=1e-5)
