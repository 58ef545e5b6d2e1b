"""QA bands named with a Sentinel-2 L2A SAFE resolution tag (`SCL_20m`, `SCL_60m`: `R20m/T33UUP_..._SCL_20m.jp2`;
`data stack --bands SCL_20m` names the VRT band so) are QA bands: stacked with nearest, warned about as model
inputs, and accepted by `curate --qa-band`. Before, only the bare names SCL, QA60, QA_PIXEL were recognised, so a
`SCL_20m` band was resampled bilinearly (SCL 4|9 edges read 5..8) and refused by --qa-band."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pytest
import rasterio

from geodino.data.archive_bands import warn_qa_model_bands
from geodino.data.vrt import band_resampling, stack_scenes

from .conftest import write_tif


@pytest.mark.parametrize(
    ("name", "kind"),
    [("SCL_20m", "scl"), ("scl_60m", "scl"), ("QA60_60m", "qa60"), ("QA_PIXEL", "qa_pixel"), ("SCL", "scl"),
     ("B02_10m", None), ("AOT_20m", None), ("SCLX_20m", None), ("SCL_20", None)],
)  # fmt: skip
def test_qa_kind_strips_a_resolution_tag(name, kind):
    from geodino.data.archive_bands import qa_kind

    assert qa_kind(name) == kind
    assert band_resampling(name, "bilinear") == ("nearest" if kind else "bilinear")


def test_a_safe_scl_20m_band_is_stacked_with_nearest(tmp_path):
    """A SAFE-like L2A scene: B02 at 10 m (R10m), SCL at 20 m (R20m) with a 4|9 edge. `--bands B02 SCL_20m`:
    the upsampled SCL holds only 4 and 9 (bilinear gave values in between), and the resampling note says QA."""
    img = tmp_path / "root" / "S2A_MSIL2A.SAFE" / "GRANULE" / "L2A_T33UUP" / "IMG_DATA"
    (img / "R10m").mkdir(parents=True)
    (img / "R20m").mkdir(parents=True)
    write_tif(img / "R10m" / "T33UUP_20240101T100031_B02_10m.tif", np.full((1, 16, 16), 500, np.uint16))
    scl = np.full((1, 8, 8), 4, np.uint8)
    scl[:, :, 4:] = 9
    write_tif(img / "R20m" / "T33UUP_20240101T100031_SCL_20m.tif", scl, res=20.0, nodata=None)
    (vrt,) = stack_scenes(tmp_path / "root", ["B02", "SCL_20m"], tmp_path / "vrt", resampling="bilinear")
    assert "SCL_20m 20 m -&gt; 10 m nearest (QA band" in vrt.read_text()
    with rasterio.open(vrt) as src:
        assert set(np.unique(src.read(2)).tolist()) == {4, 9}


def test_scl_20m_as_a_model_input_is_warned_about():
    with pytest.warns(UserWarning, match=r"band SCL_20m is a QA band"):
        assert warn_qa_model_bands(["B02", "B03", "SCL_20m"]) == ["SCL_20m"]


def test_qa_band_named_scl_20m_is_accepted(tmp_path):
    """`--qa-band SCL_20m` on a raster whose band 3 is described SCL_20m (a `data stack` VRT): kind scl."""
    from geodino.data.curate.qaband import resolve_qa_band

    path = write_tif(tmp_path / "s.tif", np.full((3, 8, 8), 4, np.uint16), nodata=None)
    with rasterio.open(path, "r+") as ds:
        ds.descriptions = ("B02", "B03", "SCL_20m")
    scene = SimpleNamespace(path=str(path), band_indexes=(1, 2))
    for name in ("SCL_20m", "scl_20m", "3"):
        qa = resolve_qa_band(name, [scene], "test")
        assert (qa.kind, qa.index) == ("scl", {str(path): 3})
