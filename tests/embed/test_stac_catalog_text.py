"""The scenes' `catalog.json` says its counts in words that agree with them: "1 feature raster" (was "1 feature
rasters"), "their VRT mosaics" for several (one per CRS)."""

from __future__ import annotations

import json

from geodino.embed.stac_items import write_catalog


def test_catalog_description_counts(tmp_path):
    one = tmp_path / "one"
    one.mkdir()
    (one / "a.stac.json").write_text(json.dumps({"type": "Feature", "links": []}))
    write_catalog(one, [one / "a.stac.json"], mosaics=[one / "mosaic.vrt"])
    said = json.loads((one / "catalog.json").read_text())["description"]
    assert said == "1 feature raster written by geodino embed, one per scene; their VRT mosaic: mosaic.vrt"
    two = tmp_path / "two"
    two.mkdir()
    for n in ("a", "b"):
        (two / f"{n}.stac.json").write_text(json.dumps({"type": "Feature", "links": []}))
    mosaics = [two / "mosaic_EPSG_32611.vrt", two / "mosaic_EPSG_32617.vrt"]
    write_catalog(two, [two / "a.stac.json", two / "b.stac.json"], mosaics=mosaics)
    said = json.loads((two / "catalog.json").read_text())["description"]
    assert said.startswith("2 feature rasters written") and "their VRT mosaics: mosaic_EPSG_32611.vrt, mosaic_" in said
