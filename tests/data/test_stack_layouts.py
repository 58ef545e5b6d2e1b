"""`data stack` on real archive layouts: Sentinel-2 SAFE folders (L2A resolution subfolders, QI_DATA masks named
after the bands), multi-band files, scene folders whose VRT names collide, and VRTs that move with their folder."""

from __future__ import annotations

import shutil

import numpy as np
import pytest
import rasterio

from geodino.data.vrt import stack_scenes
from geodino.errors import InputError

from .conftest import ramp
from .conftest import write_tif as _write_tif

ORIGIN = (500000.0, 4650000.0)


def write_tif(path, data, **kw):
    path.parent.mkdir(parents=True, exist_ok=True)
    return _write_tif(path, data, **kw)


def _l2a_safe(root, tile="T33UUP_20240101T100031"):
    """A SAFE L2A granule as unpacked: IMG_DATA/R10m, R20m, R60m (B02 at all three) and QI_DATA masks per band."""
    img = root / "S2B_MSIL2A_20240101.SAFE" / "GRANULE" / "L2A_T33UUP_A01" / "IMG_DATA"
    data = {}
    for res, bands in [(10, ["B02", "B03"]), (20, ["B02", "B03", "B11", "SCL"]), (60, ["B02", "B11", "SCL"])]:
        n = 120 // res
        for k, b in enumerate(bands):
            a = ramp(1, n, n, seed=res + k)
            data[b, res] = a[0]
            write_tif(img / f"R{res}m" / f"{tile}_{b}_{res}m.tif", a, origin=ORIGIN, res=float(res))
    qi = img.parent / "QI_DATA"
    write_tif(qi / "MSK_DETFOO_B02.tif", ramp(1, 12, 12), origin=ORIGIN)  # baseline 04.00+: masks as rasters
    (qi / "MSK_QUALIT_B11.gml").write_text("<gml/>")  # older baselines: GML masks
    return data


def test_l2a_safe_is_one_scene_with_each_band_at_its_finest(tmp_path):
    data = _l2a_safe(tmp_path / "root")
    (vrt,) = stack_scenes(tmp_path / "root", ["B02", "B03", "B11", "SCL"], tmp_path / "vrt")
    assert vrt.name == "S2B_MSIL2A_20240101.SAFE_GRANULE_L2A_T33UUP_A01_IMG_DATA.vrt"
    with rasterio.open(vrt) as src:
        assert (src.width, src.height, src.res, src.descriptions) == (
            12,
            12,
            (10.0, 10.0),
            ("B02", "B03", "B11", "SCL"),
        )
        np.testing.assert_array_equal(src.read(1), data["B02", 10])
        np.testing.assert_array_equal(src.read(2), data["B03", 10])
        np.testing.assert_array_equal(src.read(4), np.kron(data["SCL", 20], np.ones((2, 2), data["SCL", 20].dtype)))
        assert "B11 20 m -> 10 m bilinear" in src.tags()["GEODINO_STACK_RESAMPLED"]  # the 20 m file, not the 60 m


def test_l1c_safe_with_gml_masks_named_after_the_bands_is_one_scene(tmp_path):
    img = tmp_path / "root" / "S2A_MSIL1C_20200101.SAFE" / "GRANULE" / "L1C_T33UUP" / "IMG_DATA"
    for k, b in enumerate(["B02", "B03"]):
        write_tif(img / f"T33UUP_20200101T100031_{b}.tif", ramp(1, 8, 8, seed=k), origin=ORIGIN)
    (img.parent / "QI_DATA").mkdir(parents=True)
    for b in ["B02", "B03"]:
        (img.parent / "QI_DATA" / f"MSK_DETFOO_{b}.gml").write_text("<gml/>")
    (vrt,) = stack_scenes(tmp_path / "root", ["B02", "B03"], tmp_path / "vrt")
    with rasterio.open(vrt) as src:
        assert src.count == 2 and src.read(2).tolist() == ramp(1, 8, 8, seed=1)[0].tolist()


def test_a_multi_band_file_is_refused_not_read_as_its_first_band(tmp_path):
    scene = tmp_path / "root" / "s1"
    write_tif(scene / "x_B02.tif", ramp(1, 8, 8))
    write_tif(scene / "x_TCI.tif", ramp(3, 8, 8))
    with pytest.raises(InputError, match=r"x_TCI.tif \(TCI\) holds 3 bands; data stack takes one band per file"):
        stack_scenes(tmp_path / "root", ["B02", "TCI"], tmp_path / "vrt")
    assert not (tmp_path / "vrt").exists()


def test_scene_folders_whose_vrt_names_collide_are_refused_before_writing(tmp_path):
    write_tif(tmp_path / "root" / "a_b" / "x_B02.tif", ramp(1, 8, 8, seed=1))
    write_tif(tmp_path / "root" / "a" / "b" / "x_B02.tif", ramp(1, 8, 8, seed=2))
    with pytest.raises(InputError, match=r"would both be written as .*a_b\.vrt; rename one"):
        stack_scenes(tmp_path / "root", ["B02"], tmp_path / "vrt")
    assert not (tmp_path / "vrt").exists()


def test_vrts_beside_their_scene_folders_open_after_the_folder_moves(tmp_path):
    root = tmp_path / "root"
    b02 = ramp(1, 8, 8, seed=3)
    write_tif(root / "s1" / "x_B02.tif", b02)
    write_tif(root / "s1" / "x_B11.tif", ramp(1, 4, 4, seed=4), res=20.0)
    (vrt,) = stack_scenes(root, ["B02", "B11"], root)  # the VRTs written into ROOT
    (outside,) = stack_scenes(root, ["B02", "B11"], tmp_path / "elsewhere")
    assert 'relativeToVRT="1">s1/x_B02.tif<' in vrt.read_text()
    assert f'relativeToVRT="0">{(root / "s1" / "x_B02.tif").resolve()}<' in outside.read_text()
    shutil.move(root, tmp_path / "moved")
    with rasterio.open(tmp_path / "moved" / vrt.name) as src:
        np.testing.assert_array_equal(src.read(1), b02[0])
        assert src.read(2).shape == (8, 8)


def test_a_south_up_band_file_is_refused(tmp_path):
    from affine import Affine

    from tests import helpers

    write_tif(tmp_path / "root" / "s1" / "x_B02.tif", ramp(1, 8, 8))
    helpers.write_tif(
        tmp_path / "root" / "s1" / "x_B11.tif", ramp(1, 4, 4), crs="EPSG:32633",
        transform=Affine(20.0, 0.0, ORIGIN[0], 0.0, 20.0, ORIGIN[1] - 80.0), nodata=0,
    )  # fmt: skip
    with pytest.raises(InputError, match=r"x_B11.tif \(B11\) has a rotated or south-up grid"):
        stack_scenes(tmp_path / "root", ["B02", "B11"], tmp_path / "vrt")


@pytest.mark.parametrize("bands", [["B02", "B03", "B02"], ["B02", "b02"]])
def test_a_band_named_twice_is_refused(tmp_path, bands):
    write_tif(tmp_path / "root" / "s1" / "x_B02.tif", ramp(1, 8, 8))
    write_tif(tmp_path / "root" / "s1" / "x_B03.tif", ramp(1, 8, 8))
    with pytest.raises(InputError, match=r"band .* is named twice in the bands"):
        stack_scenes(tmp_path / "root", bands, tmp_path / "vrt")
    assert not (tmp_path / "vrt").exists()
