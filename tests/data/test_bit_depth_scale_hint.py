"""The 16-bit refusal (16-bit values above 255 with a sensor of 8-bit DN) pointed to `geodino data stats` "without
--sensor"; that wrote scale 1 for uint16 (DN read as reflectance, which `geodino embed` then warns about). It now
gives the command with --scale, and following it gives a sensor the same data passes with."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.errors import ConfigError
from tests.helpers import write_tif


def test_the_16_bit_refusal_names_data_stats_with_a_dn_scale(tmp_path):
    from geodino.data.stats import compute_stats

    img = np.random.default_rng(0).integers(300, 4000, (3, 32, 32)).astype(np.uint16)
    p = write_tif(tmp_path / "u16.tif", img)
    with pytest.raises(ConfigError) as err:
        compute_stats(str(p), sensor="maxar", samples=4, tile_size=16, progress=False)
    said = str(err.value)
    assert "\n" not in said
    assert "`geodino data stats scene.tif --scale 0.0001 --out my.yaml`" in said, said
    assert "without --sensor writes one" not in said
    assert "convert the files to 8 bits" in said
    # the hint's --scale 0.0001 is the dtype rule data stats applies to 16-bit DN without it (test_stats_dtype_scale)
    plain, _ = compute_stats(str(p), samples=4, tile_size=16, progress=False)
    scaled, _ = compute_stats(str(p), scale=0.0001, samples=4, tile_size=16, progress=False)
    assert float(np.max(plain.scale)) == 0.0001 and 0.03 < float(np.mean(scaled.mean)) < 0.4
    np.testing.assert_allclose(plain.mean, scaled.mean)


def test_a_datacube_refusal_names_the_cube_type():
    from geodino.data.bit_depth import check_bit_depth
    from geodino.data.sensors import get_sensor

    with pytest.raises(ConfigError, match=r"`geodino data stats store\.zarr --type cube --scale 0\.0001 --out my"):
        check_bit_depth("c.zarr", np.uint16, get_sensor("maxar"), top=999, kind="datacube", error=ConfigError)
