"""The checks of a many-scene run open each scene's header once: the shared cell grid (`scene_grid.grid_offsets`)
takes the (CRS, transform) the header check read, a STAC stack's from its VRT text, and under --bbox the header
read for its CRS check and overlap test serves the header check and the grid. Before, every header was opened
twice (header check, then the grid), four times under --bbox (CRS check, overlap, header check, grid; three for a
scene the bbox leaves out), and a stack's first asset twice."""

from __future__ import annotations

import collections
from pathlib import Path

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

import geodino.embed.pipeline as pipeline
from geodino.embed import embed_scenes
from tests.embed.conftest import random_image, write_tif
from tests.embed.toy_backbones import ConvBackbone

RES, X0, Y0, P = 10.0, 500000.0, 4000000.0, 16
OPTS = {"tile": 64, "overlap": 16, "progress": False}


@pytest.fixture
def counted(monkeypatch):
    """rasterio.open calls by file name, and each scene's grid_offset as the run gives it to `embed_raster`
    (stubbed: nothing is embedded, so only the checks' opens are counted)."""
    opens: collections.Counter[str] = collections.Counter()
    given: dict[str, list[int] | None] = {}
    real = rasterio.open

    def counting(fp, *args, **kwargs):
        opens[Path(str(fp)).name] += 1
        return real(fp, *args, **kwargs)

    def embed_raster(input, bb, config, **_):
        given[Path(str(input)).stem] = config.grid_offset

    monkeypatch.setattr(rasterio, "open", counting)
    monkeypatch.setattr(pipeline, "embed_raster", embed_raster)
    return opens, given


def folder(root):
    """a (96 px), b (128 px, 2.5 x 1.5 cells east/south of a: offset [8, 8]), c (64 px, on a's cells east of it)."""
    root.mkdir()
    big = random_image(160, 192, seed=3)
    for name, row, col, size in (("a", 0, 0, 96), ("b", 24, 40, 128), ("c", 0, 96, 64)):
        t = from_origin(X0 + col * RES, Y0 - row * RES, RES, RES)
        write_tif(root / f"{name}.tif", np.ascontiguousarray(big[:, row : row + size, col : col + size]), transform=t)


def test_each_scene_header_is_opened_once_by_the_checks(tmp_path, counted):
    opens, given = counted
    folder(tmp_path / "s")
    opens.clear()  # the writes
    bb = ConvBackbone(in_chans=3, dim=8, patch=P, n_convs=1)
    assert embed_scenes(tmp_path / "s", backbone=bb, out=tmp_path / "f", **OPTS) == []  # nothing embedded (stub)
    assert given == {"a": None, "b": [8, 8], "c": None}
    assert dict(opens) == {"a.tif": 1, "b.tif": 1, "c.tif": 1}


def test_a_bbox_run_reads_each_header_once(tmp_path, counted):
    """The bbox leaves out a, the scene whose cells the others take: its grid comes from the bbox check's read, as
    do b's band count, grid and declared scale/offset for the header check."""
    opens, given = counted
    folder(tmp_path / "s")
    opens.clear()  # the writes
    bb = ConvBackbone(in_chans=3, dim=8, patch=P, n_convs=1)
    box = [X0 + 100 * RES, Y0 - 150 * RES, X0 + 160 * RES, Y0 - 100 * RES]  # south of a and c, inside b
    assert embed_scenes(tmp_path / "s", backbone=bb, out=tmp_path / "f", bbox=box, **OPTS) == []
    assert given == {"b": [8, 8]}
    assert dict(opens) == {"a.tif": 1, "b.tif": 1, "c.tif": 1}


def test_a_stacked_items_assets_are_opened_once(tmp_path, counted):
    pytest.importorskip("pystac")
    from tests.embed.test_shared_grid_stac import archive

    opens, given = counted
    items, _ = archive(tmp_path)
    opens.clear()
    bb = ConvBackbone(in_chans=3, dim=8, patch=P, n_convs=1)
    embed_scenes(items, backbone=bb, out=tmp_path / "f", asset="red,green,blue", scale=1e-4, **OPTS)
    assert given == {"S2_0": None, "S2_1": [8, 8]}
    assert dict(opens) == {f"S2_{k}_{band}.tif": 1 for k in (0, 1) for band in ("red", "green", "blue")}


def test_a_bbox_run_over_stacked_items_takes_the_left_out_first_items_grid_from_the_bbox_check(tmp_path, counted):
    """The bbox leaves out S2_0, whose cells S2_1 takes: S2_0's grid is its first asset's header as the bbox check
    read it (rasterio's CRS), S2_1's from its VRT text (the CRS parsed from WKT): the two compare equal, so S2_1 is
    put on S2_0's cells. S2_1's VRT is made from the bbox check's read of its first asset (opened twice before:
    bbox check, then its VRT); S2_0's other assets are not opened."""
    pytest.importorskip("pystac")
    from tests.embed.test_shared_grid_stac import archive

    opens, given = counted
    items, _ = archive(tmp_path)
    opens.clear()
    bb = ConvBackbone(in_chans=3, dim=8, patch=P, n_convs=1)
    box = [X0 + 100 * RES, Y0 - 150 * RES, X0 + 160 * RES, Y0 - 100 * RES]  # inside S2_1, south of S2_0
    run = {"backbone": bb, "out": tmp_path / "f", "asset": "red,green,blue", "scale": 1e-4, "bbox": box}
    embed_scenes(items, **run, **OPTS)
    assert given == {"S2_1": [8, 8]}
    assert dict(opens) == {"S2_0_red.tif": 1, "S2_1_red.tif": 1, "S2_1_green.tif": 1, "S2_1_blue.tif": 1}
    from geodino.data.vrt import stack_files_xml

    # the VRT made from the bbox check's read is the one made by opening the assets
    alone, _ = stack_files_xml([(b, str(tmp_path / "cogs" / f"S2_1_{b}.tif")) for b in ("red", "green", "blue")])
    assert (tmp_path / "f" / "stacked" / "S2_1.vrt").read_text() == alone
