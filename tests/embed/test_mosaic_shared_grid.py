"""Scenes of one pixel grid whose origins are whole pixels but not whole cells apart (adjacent Sentinel-2 MGRS tiles:
10,002 px = 625.125 cells at patch 16) were each embedded on their own cells, and mosaic.vrt showed the later ones on
the first scene's grid, up to half a cell off (here 2.5 x 1.5 cells apart: the second scene 8 px = 80 m east and
south of its own features). Now such a scene is embedded on the first scene's cells (its window widened left/top by
the remainder, read as nodata), so the mosaic holds each scene's own features at their own place."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.embed import embed_raster, embed_scenes
from tests.embed.conftest import random_image, write_tif
from tests.embed.toy_backbones import ConvBackbone

RES, X0, Y0, P = 10.0, 500000.0, 4000000.0, 16
OPTS = {"tile": 256, "overlap": 0, "progress": False}


@pytest.fixture
def bb():
    return ConvBackbone(in_chans=3, dim=8, patch=P, n_convs=1)


def cut(root, big, name, row, col, h, w):
    """The pixels [row:row+h, col:col+w] of `big` as a scene of its own, georeferenced where they lie."""
    t = from_origin(X0 + col * RES, Y0 - row * RES, RES, RES)
    return write_tif(root / f"{name}.tif", np.ascontiguousarray(big[:, row : row + h, col : col + w]), transform=t)


def scenes(root):
    """a: rows 0..96, cols 0..96 of one image; b: rows 24..152, cols 40..168 (1.5 x 2.5 cells from a's origin)."""
    root.mkdir()
    big = random_image(160, 192, seed=3)
    cut(root, big, "a", 0, 0, 96, 96)
    cut(root, big, "b", 24, 40, 128, 128)
    return big


def read(path):
    with rasterio.open(path) as src:
        return src.read(), src.transform


def test_a_scene_whole_pixels_off_the_first_scenes_cells_is_embedded_on_them(tmp_path, bb, recwarn):
    big = scenes(tmp_path / "s")
    (mosaic,) = embed_scenes(tmp_path / "s", backbone=bb, out=tmp_path / "f", **OPTS)
    assert not [w for w in recwarn if "off the cell grid" in str(w.message)]
    fb, tb = read(tmp_path / "f" / "b.tif")
    # b's cells start 8 px left of / above its origin, on a's grid; no input pixel is lost (128 + 8 px: 9 cells)
    assert (tb.c, tb.f) == (X0 + 32 * RES, Y0 - 16 * RES) and fb.shape[1:] == (9, 9)
    assert np.isfinite(fb).all()  # a cell holding 8 padding and 8 real columns is a cell of real pixels
    # the mosaic at each of b's cell centres east of a (cols >= 96 px: b alone there) is b's own feature vector
    with rasterio.open(mosaic) as m:
        for j in range(4, 9):
            for i in range(9):
                x, y = tb * (j + 0.5, i + 0.5)
                r, c = m.index(x, y)
                got = m.read(window=((r, r + 1), (c, c + 1)))[:, 0, 0]
                np.testing.assert_array_equal(got, fb[:, i, j], err_msg=f"cell row {i} col {j}")
    # and b's features are those of the whole image at the same place, away from b's edges (3 x 3 cell field)
    write_tif(tmp_path / "big.tif", big, transform=from_origin(X0, Y0, RES, RES))
    whole, _ = read(embed_raster(tmp_path / "big.tif", bb, tmp_path / "big_f.tif", **OPTS))
    np.testing.assert_allclose(fb[:, 2:7, 2:7], whole[:, 3:8, 4:9], atol=1e-5)


def test_the_first_scene_is_embedded_as_on_its_own_bit_for_bit(tmp_path, bb):
    scenes(tmp_path / "s")
    embed_scenes(tmp_path / "s", backbone=bb, out=tmp_path / "f", **OPTS)
    alone = embed_raster(tmp_path / "s" / "a.tif", bb, tmp_path / "a_alone.tif", **OPTS)
    (fa, ta), (fo, to) = read(tmp_path / "f" / "a.tif"), read(alone)
    assert ta == to and fa.tobytes() == fo.tobytes()


def test_resume_finds_the_shifted_scene_done_and_bbox_snaps_to_the_shared_grid(tmp_path, bb):
    scenes(tmp_path / "s")
    embed_scenes(tmp_path / "s", backbone=bb, out=tmp_path / "f", **OPTS)
    out_b = tmp_path / "f" / "b.tif"
    stamp = out_b.stat().st_mtime_ns
    embed_scenes(tmp_path / "s", backbone=bb, out=tmp_path / "f", resume=True, **OPTS)
    assert out_b.stat().st_mtime_ns == stamp  # checked against this run's settings and found done: not rewritten
    # a bbox over b's east part: the window snapped outward on a's cells (col 96 px -> 96; row 40 px -> 32)
    box = [X0 + 100 * RES, Y0 - 120 * RES, X0 + 150 * RES, Y0 - 40 * RES]
    embed_scenes(tmp_path / "s", backbone=bb, out=tmp_path / "g", bbox=box, **OPTS)
    fg, tg = read(tmp_path / "g" / "b.tif")
    assert (tg.c, tg.f) == (X0 + 96 * RES, Y0 - 32 * RES)
    fb, _ = read(out_b)
    # cells away from the window's edges equal the full-scene run's at the same place
    np.testing.assert_allclose(fg[:, 1:-1, 1:-1], fb[:, 2 : 2 + fg.shape[1] - 2, 5 : 5 + fg.shape[2] - 2], atol=1e-5)


def test_scenes_that_cannot_share_cells_keep_their_own_grid():
    from geodino.embed.scene_grid import offset_on

    t0 = from_origin(X0, Y0, RES, RES)
    assert offset_on(t0, from_origin(X0 + 40 * RES, Y0 - 24 * RES, RES, RES), P) == (8, 8)
    assert offset_on(t0, from_origin(X0 + 100020.0, Y0, RES, RES), P) == (2, 0)  # MGRS neighbours: 10,002 px
    assert offset_on(t0, from_origin(X0 - 3 * RES, Y0, RES, RES), P) == (13, 0)  # west of the first scene
    assert offset_on(t0, from_origin(X0 + 5.0, Y0, RES, RES), P) is None  # half a pixel: not on the pixel grid
    assert offset_on(t0, from_origin(X0 + 40.0, Y0, 20.0, 20.0), P) is None  # another pixel size


def test_resume_keeps_a_scene_an_earlier_version_embedded_on_its_own_grid(tmp_path, bb):
    """A folder run started before scenes shared the first one's cells: --resume keeps its finished scene (on its
    own grid, named by the mosaic's warning) instead of refusing it as written with other settings."""
    scenes(tmp_path / "s")
    out_b = embed_raster(tmp_path / "s" / "b.tif", bb, tmp_path / "f" / "b.tif", **OPTS)  # what the old run wrote
    stamp, (_, tb) = out_b.stat().st_mtime_ns, read(out_b)
    with pytest.warns(UserWarning, match=r"1 scene \(b\.tif\) lies off the cell grid of a\.tif"):
        embed_scenes(tmp_path / "s", backbone=bb, out=tmp_path / "f", resume=True, **OPTS)
    assert out_b.stat().st_mtime_ns == stamp and read(out_b)[1] == tb == from_origin(
        X0 + 400, Y0 - 240, P * RES, P * RES
    )
