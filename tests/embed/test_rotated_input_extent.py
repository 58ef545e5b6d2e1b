"""On a rotated grid `input_bounds` is the envelope of the input's parallelogram: positions in the last partial
cells past a rotated input's edge were taken as on the input (a north-up input refuses them), and the STAC item's
`geodino:input_bbox` was the lon/lat bbox of the envelope, ~2 km wider than the input's for a 100 km scene."""

from __future__ import annotations

import numpy as np
import pytest
from affine import Affine

from geodino.embed import embed_raster, similarity_map
from geodino.embed.placement import apply_affine, input_footprint
from geodino.embed.reader import EmbeddingReader
from geodino.errors import InputError
from tests.embed.conftest import random_image, write_tif

OPTS = {"tile": 32, "overlap": 0, "progress": False}


def _rotated(tmp_path, conv_bb, *, size=30, res=10.0, origin=(500000.0, 4000000.0)):
    t = Affine.translation(*origin) @ Affine.rotation(20.0) @ Affine.scale(res, -res)
    src = write_tif(tmp_path / "rot.tif", random_image(size, size), transform=t)
    return embed_raster(src, conv_bb, tmp_path / "rot_f.tif", **OPTS), t


@pytest.mark.parametrize("pixel", [(31.0, 10.0), (10.0, 31.0), (31.5, 31.5)])
def test_a_point_in_the_partial_cells_past_a_rotated_input_is_refused(tmp_path, conv_bb, pixel):
    out, t = _rotated(tmp_path, conv_bb)  # 30 px, 4-px cells: the last cells reach 2 px past the input
    with pytest.raises(InputError, match=r"lies outside the input of feature raster .* over no input pixel"):
        similarity_map(out, tmp_path / "s.tif", point=apply_affine(t, *pixel))


def test_points_on_a_rotated_input_are_still_taken(tmp_path, conv_bb):
    out, t = _rotated(tmp_path, conv_bb)
    for pixel in ((29.5, 10.0), (10.0, 29.5), (0.2, 0.2), (29.9, 29.9)):  # in the partial cells, over input pixels
        similarity_map(out, tmp_path / "s.tif", point=apply_affine(t, *pixel), overwrite=True)
    with EmbeddingReader(out) as rd:
        fp = input_footprint(rd)
    corners = np.array([apply_affine(t, x, y) for x, y in ((0, 0), (30, 0), (30, 30), (0, 30))])
    assert fp.geom_type == "Polygon" and fp.area == pytest.approx(300.0 * 300.0)
    np.testing.assert_allclose(np.array(fp.exterior.coords)[:4], corners, atol=1e-6)


def test_stac_input_bbox_of_a_rotated_input_is_the_parallelogram_s(tmp_path, conv_bb):
    from pyproj import Transformer

    from geodino.embed.stac_items import raster_item

    # 64 km at 1 km pixels near 60 N, rotated 20 degrees
    out, t = _rotated(tmp_path, conv_bb, size=64, res=1000.0, origin=(300000.0, 6700000.0))
    to_lonlat = Transformer.from_crs("EPSG:32633", "EPSG:4326", always_xy=True)
    edge = np.linspace(0.0, 64.0, 257)
    px = np.concatenate([edge, np.full_like(edge, 64.0), edge, np.zeros_like(edge)])
    py = np.concatenate([np.zeros_like(edge), edge, np.full_like(edge, 64.0), edge])
    lon, lat = to_lonlat.transform(*apply_affine(t, px, py))
    expect = [lon.min(), lat.min(), lon.max(), lat.max()]
    got = raster_item(out)["properties"]["geodino:input_bbox"]
    np.testing.assert_allclose(got, expect, atol=1e-4)  # ~10 m; the envelope's bbox was off by up to ~0.02 degrees
