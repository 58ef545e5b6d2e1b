"""`--upsample` on a rotated input was refused as "upsampling needs a north-up grid", without a way on; the line
now says what works: drop --upsample (the patch-grid COG keeps the rotation), or warp it north-up first."""

from __future__ import annotations

import pytest
from rasterio.transform import Affine

from geodino.embed import embed_raster
from geodino.errors import InputError
from tests.embed.conftest import random_image, write_tif


def test_upsample_of_a_rotated_input_says_what_to_do(tmp_path, conv_bb):
    rot = write_tif(tmp_path / "rot.tif", random_image(32, 32), transform=Affine(10, 2, 5e5, 2, -10, 4e6))
    with pytest.raises(InputError) as caught:
        embed_raster(rot, conv_bb, tmp_path / "f.tif", tile=32, overlap=8, upsample=True, progress=False)
    line = str(caught.value)
    assert line.startswith(f"input {rot} has a rotated geotransform, which --upsample cannot write")
    assert "drop --upsample" in line and f"gdalwarp {rot} rot_north_up.tif" in line and "\n" not in line
    assert not (tmp_path / "f.tif").exists()
