"""`geodino data stack` and symbolic links: a scene folder linked into ROOT is a scene (Python 3.11's rglob did not
enter it: 'no file under ROOT is named after any of the bands'), as raster and image sources follow linked folders;
`--relative` names band files through their links (links travel with a moved tree), not through their targets."""

from __future__ import annotations

import os
import shutil

import numpy as np
import pytest
import rasterio

from geodino.data.vrt import stack_scenes

from .conftest import write_tif


def _lake(base):
    """Band files of one scene outside the tree: B02 10 m and B11 20 m, 8 x 8 px."""
    lake = base / "lake" / "s1"
    lake.mkdir(parents=True)
    write_tif(lake / "B02.tif", np.full((1, 8, 8), 7, np.uint16), nodata=None)
    write_tif(lake / "B11.tif", np.arange(16, dtype=np.uint16).reshape(1, 4, 4), res=20.0, nodata=None)
    return lake


def test_a_scene_folder_linked_into_root_is_stacked(tmp_path):
    lake = _lake(tmp_path)
    (tmp_path / "root").mkdir()
    os.symlink(lake, tmp_path / "root" / "s1", target_is_directory=True)
    os.symlink(tmp_path / "root", tmp_path / "root" / "loop", target_is_directory=True)  # a cycle: listed once
    (vrt,) = stack_scenes(tmp_path / "root", ["B02", "B11"], tmp_path / "vrts", resampling="nearest")
    assert vrt.name == "s1.vrt"
    with rasterio.open(vrt) as src:
        np.testing.assert_array_equal(src.read(1), 7)
        np.testing.assert_array_equal(src.read(2)[::2, ::2], np.arange(16).reshape(4, 4))


def test_relative_paths_go_through_the_links(tmp_path):
    """Band files linked (absolute links) into tree/root/s1: with --relative the VRT names ../root/s1/B02.tif, so
    the tree moved to another depth still reads; through the targets (../../lake/...) it broke."""
    lake = _lake(tmp_path)
    scene = tmp_path / "tree" / "root" / "s1"
    scene.mkdir(parents=True)
    for name in ("B02.tif", "B11.tif"):
        os.symlink(lake / name, scene / name)
    (vrt,) = stack_scenes(tmp_path / "tree" / "root", ["B02", "B11"], tmp_path / "tree" / "vrts", relative=True)
    assert '<SourceFilename relativeToVRT="1">../root/s1/B02.tif</SourceFilename>' in vrt.read_text()
    (tmp_path / "a" / "b").mkdir(parents=True)
    moved = shutil.move(tmp_path / "tree", tmp_path / "a" / "b" / "tree")
    with rasterio.open(f"{moved}/vrts/s1.vrt") as src:
        np.testing.assert_array_equal(src.read(1), 7)


@pytest.mark.parametrize("relative", [False, True])
def test_files_in_the_vrt_folder_stay_relative(tmp_path, relative):
    """VRTs written into ROOT: band files below it are relative with or without --relative (unchanged)."""
    _lake(tmp_path)
    (vrt,) = stack_scenes(tmp_path / "lake", ["B02", "B11"], tmp_path / "lake", relative=relative)
    assert '<SourceFilename relativeToVRT="1">s1/B02.tif</SourceFilename>' in vrt.read_text()


def test_relative_paths_from_an_output_folder_reached_through_a_link(tmp_path):
    """--out a link to a folder elsewhere (`out -> other/a/b`): the VRT named ../root/s1/B02.tif from the link's
    place, but `..` leaves the folder where it really is (other/a), so no band read; the name now leads there from
    the folder's real place."""
    lake = _lake(tmp_path)
    (tmp_path / "other" / "a" / "b").mkdir(parents=True)
    os.symlink(tmp_path / "other" / "a" / "b", tmp_path / "out", target_is_directory=True)
    (vrt,) = stack_scenes(lake.parent, ["B02", "B11"], tmp_path / "out" / "vrts", relative=True)
    assert '<SourceFilename relativeToVRT="1">../../../../lake/s1/B02.tif</SourceFilename>' in vrt.read_text()
    for path in (vrt, tmp_path / "other" / "a" / "b" / "vrts" / "s1.vrt"):
        with rasterio.open(path) as src:
            np.testing.assert_array_equal(src.read(1), 7)
