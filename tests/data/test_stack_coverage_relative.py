"""`geodino data stack`: a band file covering part of the finest band's extent is masked there, not read as 0;
`--relative` writes `../` source paths so the whole tree (band files and VRTs) can be moved."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import rasterio

from geodino import cli
from geodino.data.archive import RasterArchive
from geodino.data.vrt import stack_scenes
from geodino.errors import InputError

from .conftest import write_tif


def _half_covered(root, nodata=None):
    """B02 10 m on 20 x 20 pixels; B11 20 m on the left half only (5 x 10 pixels of 20 m: x 0..100 m of 200)."""
    scene = root / "s1"
    scene.mkdir(parents=True)
    write_tif(scene / "B02.tif", np.full((1, 20, 20), 7, np.uint16), nodata=nodata)
    write_tif(scene / "B11.tif", np.full((1, 10, 5), 9, np.uint16), res=20.0, nodata=nodata)
    return scene


@pytest.mark.parametrize("nodata", [None, 0])
def test_a_band_covering_half_the_grid_is_masked_on_the_other_half(tmp_path, nodata):
    """Before: B11 read 0 on the right half with no nodata declared (a real-looking zero fed to the model; with
    nodata 0 the pixel stayed valid, B02 being data). Now the VRT carries a dataset mask (per_dataset) valid only
    where every band has data, and RasterArchive marks the right half invalid."""
    _half_covered(tmp_path / "root", nodata)
    (vrt,) = stack_scenes(tmp_path / "root", ["B02", "B11"], tmp_path / "vrt", resampling="nearest")
    with rasterio.open(vrt) as src:
        assert [f.name for f in src.mask_flag_enums[0]] == ["per_dataset"]
        mask = src.dataset_mask()
        np.testing.assert_array_equal(src.read(2)[:, :10], 9)
    assert (mask[:, :10] == 255).all() and (mask[:, 10:] == 0).all()
    archive = RasterArchive([str(vrt)], sensor="sentinel2_l2a", bands=["B02", "B11"], progress=False)
    assert archive.scenes[0].has_mask
    _, valid = archive.read(0, 0, 0, 20, 20)
    assert valid[:, :10].all() and not valid[:, 10:].any()


def test_bands_covering_the_grid_get_no_mask(tmp_path):
    """Full coverage: the VRT is as before (no MaskBand), so GDAL's flags stay all_valid."""
    scene = tmp_path / "root" / "s1"
    scene.mkdir(parents=True)
    write_tif(scene / "B02.tif", np.full((1, 20, 20), 7, np.uint16), nodata=None)
    write_tif(scene / "B11.tif", np.full((1, 10, 10), 9, np.uint16), res=20.0, nodata=None)
    (vrt,) = stack_scenes(tmp_path / "root", ["B02", "B11"], tmp_path / "vrt")
    assert "<MaskBand>" not in vrt.read_text()
    with rasterio.open(vrt) as src:
        assert [f.name for f in src.mask_flag_enums[0]] == ["all_valid"]


def test_a_band_outside_the_grid_is_refused(tmp_path):
    """A band file that does not overlap the finest band at all (another tile's) would leave no valid pixel."""
    scene = tmp_path / "root" / "s1"
    scene.mkdir(parents=True)
    write_tif(scene / "B02.tif", np.full((1, 20, 20), 7, np.uint16), nodata=None)
    write_tif(scene / "B11.tif", np.full((1, 10, 10), 9, np.uint16), res=20.0, origin=(600000.0, 4650000.0))
    with pytest.raises(InputError, match=r"B11\.tif \(B11\) does not overlap"):
        stack_scenes(tmp_path / "root", ["B02", "B11"], tmp_path / "vrt")


def test_relative_paths_survive_moving_the_tree(tmp_path):
    """Before: VRTs in a folder beside ROOT (not above it) named the band files by absolute paths, broken once the
    tree moved. `--relative` writes `../root/s1/B02.tif` (relativeToVRT="1"); the moved tree reads the same pixels.
    Without it the default is unchanged (absolute)."""
    tree = tmp_path / "tree"
    scene = _half_covered(tree / "root")
    write_tif(scene / "B11.tif", np.arange(200, dtype=np.uint16).reshape(1, 20, 10), res=10.0, nodata=None)
    args = ["data", "stack", str(tree / "root"), "--bands", "B02", "B11"]
    assert cli.main([*args, "--out", str(tree / "vrts"), "--relative"]) == 0
    assert cli.main([*args, "--out", str(tree / "abs")]) == 0
    text = (tree / "vrts" / "s1.vrt").read_text()
    assert '<SourceFilename relativeToVRT="1">../root/s1/B02.tif</SourceFilename>' in text
    assert str(tmp_path) not in text
    assert str(tree / "root") in (tree / "abs" / "s1.vrt").read_text()
    with rasterio.open(tree / "vrts" / "s1.vrt") as src:
        before = src.read(), src.dataset_mask()
    moved = shutil.move(tree, tmp_path / "elsewhere")
    with rasterio.open(f"{moved}/vrts/s1.vrt") as src:
        after = src.read(), src.dataset_mask()
    np.testing.assert_array_equal(after[0], before[0])
    np.testing.assert_array_equal(after[1], before[1])
    assert (after[1][:, :10] == 255).all() and (after[1][:, 10:] == 0).all()  # the mask's source moved too
    with pytest.raises(rasterio.errors.RasterioIOError):
        with rasterio.open(f"{moved}/abs/s1.vrt") as src:
            src.read()


@pytest.mark.parametrize("resampling", ["nearest", "bilinear"])
@pytest.mark.parametrize("nodata", [None, 0])
def test_the_coverage_mask_holds_in_a_reprojected_read(tmp_path, nodata, resampling):
    """A source with `crs:` reads the VRT through a WarpedVRT; GDAL's warper ignored the VRT's mask once the
    sensor's nodata (0) was passed as the source nodata, so the uncovered B11 half was warped as data again (read
    0, or 1 with bilinear: GDAL moves a valid value off the nodata value) and counted valid. Now the warp reads the
    file's own mask: only the covered half is valid, and every valid B11 value is the file's 9."""
    _half_covered(tmp_path / "root", nodata)
    (vrt,) = stack_scenes(tmp_path / "root", ["B02", "B11"], tmp_path / "vrt", resampling="nearest")
    archive = RasterArchive(
        [str(vrt)], sensor="sentinel2_l2a", bands=["B02", "B11"], crs="EPSG:32632", resampling=resampling,
        progress=False,
    )  # fmt: skip
    s = archive.scenes[0]
    data, valid = archive.read(0, 0, 0, s.width, s.height)
    assert 150 <= valid.sum() <= 250  # about the covered half of 400 source pixels (the grid is warped)
    assert set(data[1][valid].tolist()) == {9} and set(data[0][valid].tolist()) == {7}


def test_stac_asset_stacks_get_the_same_coverage_mask(tmp_path):
    """`stack_files_xml` (one-band STAC assets, `geodino embed --asset red,swir16`): an asset covering half of the
    first one's grid read 0 on the other half; now the VRT is masked there, and an asset off the grid is refused."""
    from geodino.data.vrt import stack_files

    scene = _half_covered(tmp_path / "root")
    vrt, notes = stack_files([("red", str(scene / "B02.tif")), ("swir16", str(scene / "B11.tif"))], tmp_path / "a.vrt")
    assert notes == ["swir16 20 m -> 10 m bilinear"]
    with rasterio.open(vrt) as src:
        mask = src.dataset_mask()
    assert (mask[:, :10] == 255).all() and (mask[:, 10:] == 0).all()
    write_tif(tmp_path / "far.tif", np.full((1, 10, 10), 9, np.uint16), res=20.0, origin=(600000.0, 4650000.0))
    with pytest.raises(InputError, match=r"far\.tif \(swir16\) does not overlap.*pass assets of one footprint of "):
        stack_files([("red", str(scene / "B02.tif")), ("swir16", str(tmp_path / "far.tif"))], tmp_path / "b.vrt",
                    where="item x")  # fmt: skip
