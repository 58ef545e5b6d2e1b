"""`data stack` / `stack_files_xml` resample QA bands (SCL, QA60, QA_PIXEL) with nearest, whatever the method
for the spectral bands: interpolating class codes invents classes (bilinear across an SCL 4|9 edge gave 5 and 8)."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geodino.data.vrt import stack_files_xml, stack_scenes

from .conftest import ramp, write_tif

ORIGIN = (500000.0, 4650000.0)


def _scl(h: int = 12, w: int = 14) -> np.ndarray:
    """A 20 m SCL with class edges 4|9 (vegetation | high cloud), 3|8 and 0 (no data) corners."""
    scl = np.full((h, w), 4, np.uint8)
    scl[:, w // 2 :] = 9
    scl[h // 2 :, : w // 3] = 3
    scl[h // 2 :, w // 2 : w // 2 + 3] = 8
    scl[0, 0] = scl[-1, -1] = 0
    return scl


def _nearest(src: np.ndarray, src_res: float, dst_shape: tuple[int, int], dst_res: float) -> np.ndarray:
    """Independent nearest: the source pixel holding each destination pixel centre (same origin)."""
    rows = np.floor((np.arange(dst_shape[0]) + 0.5) * dst_res / src_res).astype(int)
    cols = np.floor((np.arange(dst_shape[1]) + 0.5) * dst_res / src_res).astype(int)
    return src[np.ix_(rows, cols)]


@pytest.mark.parametrize("resampling", ["bilinear", "cubic", "average"])
@pytest.mark.parametrize("name", ["SCL", "scl", "QA_PIXEL"])
def test_stack_resamples_a_qa_band_with_nearest(tmp_path, resampling, name):
    scene = tmp_path / "root" / "S2B_T33UUP_20240101"
    scene.mkdir(parents=True)
    b02 = ramp(1, 24, 28, seed=1)
    scl = _scl()
    b11 = np.kron(np.array([[100, 5000], [5000, 100]], np.uint16), np.ones((6, 7), np.uint16))  # 20 m
    write_tif(scene / "T33UUP_20240101_B02_10m.tif", b02, origin=ORIGIN)
    write_tif(scene / f"T33UUP_20240101_{name}_20m.tif", scl[None], origin=ORIGIN, res=20.0, nodata=0)
    write_tif(scene / "T33UUP_20240101_B11_20m.tif", b11[None], origin=ORIGIN, res=20.0)
    (vrt,) = stack_scenes(tmp_path / "root", ["B02", name, "B11"], tmp_path / "vrt", resampling=resampling)
    with rasterio.open(vrt) as src:
        assert (src.width, src.height, src.res) == (28, 24, (10.0, 10.0))
        got, spectral = src.read(2), src.read(3)
        resampled = src.tags().get("GEODINO_STACK_RESAMPLED")
    assert set(np.unique(got)) <= set(np.unique(scl)), np.unique(got)  # no invented class
    np.testing.assert_array_equal(got, _nearest(scl, 20.0, (24, 28), 10.0))
    assert resampled == f"{name} 20 m -> 10 m nearest (QA band: class codes / bit flags); B11 20 m -> 10 m {resampling}"
    if resampling != "average":  # the spectral band still gets the asked method: values between 100 and 5000
        assert ((spectral > 100) & (spectral < 5000)).any()


def test_stack_files_xml_takes_nearest_for_a_qa_asset(tmp_path):
    red = write_tif(tmp_path / "red.tif", ramp(1, 24, 28, seed=2), origin=ORIGIN)
    scl = write_tif(tmp_path / "scl.tif", _scl()[None].astype(np.uint16), origin=ORIGIN, res=20.0)
    text, notes = stack_files_xml([("red", str(red)), ("scl", str(scl))])
    assert notes == ["scl 20 m -> 10 m nearest (QA band: class codes / bit flags)"]
    out = tmp_path / "s.vrt"
    out.write_text(text)
    with rasterio.open(out) as src:
        np.testing.assert_array_equal(src.read(2), _nearest(_scl(), 20.0, (24, 28), 10.0))
