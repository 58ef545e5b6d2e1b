"""The shared cell grid of a many-scene run (`scene_grid.grid_offsets`) over STAC items with one band per asset:
each item is read through its VRT (`scene_stacks`), on its first asset's grid, so an item whose assets lie whole
pixels but not whole cells from the first item's is embedded on the first item's cells, as a GeoTIFF scene is."""

from __future__ import annotations

import json

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.embed import embed_raster, embed_scenes
from tests.embed.conftest import random_image, write_tif
from tests.embed.test_stac_bands import s2_item
from tests.embed.toy_backbones import ConvBackbone

pytest.importorskip("pystac")

RES, X0, Y0, P = 10.0, 500000.0, 4000000.0, 16
OPTS = {"tile": 64, "overlap": 16, "progress": False, "scale": 1e-4}
CUTS = {"S2_0": (0, 0, 96), "S2_1": (24, 40, 128)}  # item: (row, col, size) in px of one image; S2_1: offset [8, 8]


@pytest.fixture
def bb():
    return ConvBackbone(in_chans=3, dim=8, patch=P, n_convs=1)


def cog(path, band, t):
    """A one-band uint16 COG on transform `t` (nodata 0), as Earth Search serves each Sentinel-2 band."""
    h, w = band.shape
    profile = {"driver": "COG", "height": h, "width": w, "count": 1, "dtype": band.dtype, "nodata": 0}
    with rasterio.open(path, "w", crs="EPSG:32633", transform=t, **profile) as dst:
        dst.write(band[None])


def archive(root):
    """Two items of blue/green/red 10 m COGs cut from one image (S2_1 2.5 x 1.5 cells east/south of S2_0); returns
    the item collection and each item's stack in red, green, blue order with its transform."""
    (root / "cogs").mkdir(parents=True)
    big = random_image(160, 192, seed=3, dtype="uint16")
    big[big == 0] = 1  # 0 is the COGs' nodata
    items, stacks = [], {}
    for name, (row, col, size) in CUTS.items():
        img = np.ascontiguousarray(big[:, row : row + size, col : col + size])
        t = from_origin(X0 + col * RES, Y0 - row * RES, RES, RES)
        hrefs = {}
        for key, band in zip(("blue", "green", "red"), img):
            cog(root / "cogs" / f"{name}_{key}.tif", band, t)
            hrefs[key] = f"cogs/{name}_{key}.tif"
        items.append(s2_item(name, hrefs))
        stacks[name] = (img[[2, 1, 0]], t)
    path = root / "items.json"
    path.write_text(json.dumps({"type": "FeatureCollection", "features": items}))
    return path, stacks


def read(path):
    with rasterio.open(path) as src:
        return src.read(), src.transform


def test_a_stacked_item_off_the_first_items_cells_is_embedded_on_them(tmp_path, bb, recwarn):
    items, stacks = archive(tmp_path)
    out = tmp_path / "f"
    (mosaic,) = embed_scenes(items, backbone=bb, out=out, asset="red,green,blue", **OPTS)
    assert not [w for w in recwarn if "off the cell grid" in str(w.message)]
    with rasterio.open(out / "stacked" / "S2_1.vrt") as src:  # the VRT is on its first asset's grid
        assert src.transform == stacks["S2_1"][1]
    fb, tb = read(out / "S2_1.tif")
    assert (tb.c, tb.f) == (X0 + 32 * RES, Y0 - 16 * RES) and fb.shape[1:] == (9, 9)  # 8 px left of / above
    # each item bit-equal to its pre-stacked GeoTIFF embedded on the first item's cells (S2_0: its own)
    for name, off in (("S2_0", None), ("S2_1", [8, 8])):
        img, t = stacks[name]
        ref_in = write_tif(tmp_path / f"{name}_stacked.tif", img, transform=t, nodata=0)
        ref = embed_raster(ref_in, bb, tmp_path / "ref" / f"{name}.tif", grid_offset=off, **OPTS)
        got, want = read(out / f"{name}.tif"), read(ref)
        assert got[1] == want[1] and got[0].tobytes() == want[0].tobytes(), name
    with rasterio.open(mosaic) as m:  # the mosaic at S2_1's cell centres east of S2_0 is S2_1's own vector
        for j in range(4, 9):
            for i in range(9):
                r, c = m.index(*(tb * (j + 0.5, i + 0.5)))
                got = m.read(window=((r, r + 1), (c, c + 1)))[:, 0, 0]
                np.testing.assert_array_equal(got, fb[:, i, j], err_msg=f"cell row {i} col {j}")
