"""The shared cell grid of a many-scene run (`scene_grid.grid_offsets`) in split runs: `--workers N` (each scene's
blocks written by N spawned processes) and `--world-size/--rank` (each rank embeds its share of the scenes and
computes the offsets itself, from every scene listed). A worker or rank on another grid than the single-process
run would write a scene half a cell off, or refuse the work folder another process started; here every split run
writes the scenes and mosaic of the single-process run bit for bit."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio
from rasterio.transform import from_origin

from geodino.embed import embed_scenes
from tests.embed.conftest import random_image, write_tif
from tests.embed.toy_backbones import ConvBackbone

RES, X0, Y0, P = 10.0, 500000.0, 4000000.0, 16
# several blocks of 2 cell rows per scene, so each of two workers writes some of them
OPTS = {"tile": 64, "overlap": 16, "chunk": 2, "block_rows": 2, "progress": False, "threads": 1}


@pytest.fixture
def bb():
    return ConvBackbone(in_chans=3, dim=8, patch=P, n_convs=1)


def scenes(root, bad_first=False):
    """a (96 x 96 px) and b (128 x 128 px, 2.5 x 1.5 cells east/south of a: grid_offset [8, 8]), cut from one
    image; `bad_first`: a file GDAL cannot open listed before them (0bad.tif)."""
    root.mkdir()
    big = random_image(160, 192, seed=3)
    for name, row, col, size in (("a", 0, 0, 96), ("b", 24, 40, 128)):
        t = from_origin(X0 + col * RES, Y0 - row * RES, RES, RES)
        write_tif(root / f"{name}.tif", np.ascontiguousarray(big[:, row : row + size, col : col + size]), transform=t)
    if bad_first:
        (root / "0bad.tif").write_bytes(b"not a tiff" * 20)


def read(path):
    with rasterio.open(path) as src:
        return src.read().tobytes(), src.transform, src.crs


def same_run(one, other, names):
    """The scenes `names` and the mosaics of two output folders hold the same pixels on the same grids."""
    for name in names:
        assert read(one / f"{name}.tif") == read(other / f"{name}.tif"), name
    assert read(one / "mosaic.vrt") == read(other / "mosaic.vrt")


@pytest.mark.slow
def test_a_workers_run_writes_the_single_process_runs_scenes_and_mosaic_bit_for_bit(tmp_path, bb):
    scenes(tmp_path / "s")
    embed_scenes(tmp_path / "s", backbone=bb, out=tmp_path / "one", **OPTS)
    embed_scenes(tmp_path / "s", backbone=bb, out=tmp_path / "two", workers=2, **OPTS)
    with rasterio.open(tmp_path / "two" / "b.tif") as src:  # b on a's cells: 8 px left of / above its origin
        assert (src.transform.c, src.transform.f) == (X0 + 32 * RES, Y0 - 16 * RES)
    same_run(tmp_path / "one", tmp_path / "two", "ab")


def test_ranks_take_the_grid_of_the_first_readable_scene_listed_whichever_scenes_they_embed(tmp_path, bb):
    """Rank 0 embeds 0bad.tif (skipped) and b, rank 1 embeds a: rank 0 never reads a's pixels, yet puts b on a's
    cells (the first readable scene listed), as the single-process run does; the last rank writes the mosaic."""
    scenes(tmp_path / "s", bad_first=True)
    opts = {**OPTS, "on_error": "skip"}
    with pytest.warns(UserWarning, match="0bad"):
        embed_scenes(tmp_path / "s", backbone=bb, out=tmp_path / "one", **opts)
    with pytest.warns(UserWarning, match="0bad"):
        assert embed_scenes(tmp_path / "s", backbone=bb, out=tmp_path / "r", world_size=2, rank=0, **opts) == []
    assert sorted(p.name for p in (tmp_path / "r").glob("*.tif")) == ["b.tif"]
    (mosaic,) = embed_scenes(tmp_path / "s", backbone=bb, out=tmp_path / "r", world_size=2, rank=1, **opts)
    assert mosaic == tmp_path / "r" / "mosaic.vrt"
    with rasterio.open(tmp_path / "r" / "b.tif") as src:
        assert (src.transform.c, src.transform.f) == (X0 + 32 * RES, Y0 - 16 * RES)
    same_run(tmp_path / "one", tmp_path / "r", "ab")
