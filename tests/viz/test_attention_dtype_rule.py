"""`viz attention` without --sensor reads a raster by the backbone's recorded DN scale, as `geodino embed` does,
and like embed (`geodino.data.dtype_rule`) never applies it to int8 rasters: signed 8-bit values are codes
(quantised embeddings, classes, SAR dB), so the run is refused in one line asking for --sensor; 32-bit integer
DN take the record as 16-bit DN do."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geodino.errors import InputError
from geodino.viz.attention import read_input
from tests import helpers

S2 = "arch:vit_tiny?depth=1&patch_size=8&seed=0&bands=B04,B03,B02&sensor=sentinel2_l2a"  # records x * 1e-4


def test_int8_is_refused_and_int32_takes_the_record(tmp_path):
    from geodino.backbones import load_backbone

    bb = load_backbone(S2)
    rng = np.random.default_rng(0)
    codes = helpers.write_tif(tmp_path / "codes.tif", rng.integers(-100, 100, (3, 16, 16)).astype(np.int8))
    with pytest.raises(InputError, match=r"codes\.tif is int8: signed 8-bit data holds codes.*--sensor NAME"):
        read_input(codes, backbone=bb)
    dn = rng.integers(0, 70000, (3, 16, 16)).astype(np.int32)
    sample = read_input(helpers.write_tif(tmp_path / "dn.tif", dn), backbone=bb)
    assert "x*0.0001" in sample["sensor_note"]
    want = torch.from_numpy(dn.astype(np.float32)) * np.float32(1e-4)
    torch.testing.assert_close(torch.as_tensor(sample["image"]), want, rtol=1e-6, atol=1e-7)
