"""int8 input took the 16-bit default, reflectance = DN / 10000 (values within +-0.0128, one "assumed" warning):
signed 8-bit rasters are codes (quantised embeddings such as `--dtype int8` output, classes, SAR dB), so without a
rule from the user or the file the run is refused before anything is written; --scale gives the rule."""

from __future__ import annotations

import numpy as np
import pytest
import rasterio

from geodino.embed import embed_raster
from geodino.errors import InputError
from tests.embed.conftest import write_tif


@pytest.fixture
def int8_tif(tmp_path):
    data = np.random.default_rng(0).integers(-100, 100, (3, 16, 16)).astype(np.int8)
    return write_tif(tmp_path / "codes.tif", data)


def test_int8_input_without_a_rule_is_refused_before_anything_is_written(tmp_path, int8_tif, conv_bb):
    out = tmp_path / "out" / "f.tif"
    with pytest.raises(InputError, match=r"codes\.tif is int8: .*--scale FACTOR \(--scale 1 reads the values"):
        embed_raster(int8_tif, conv_bb, out, tile=16, overlap=0, progress=False)
    assert not out.parent.exists()


def test_int8_input_with_scale_is_read_by_it(tmp_path, int8_tif, conv_bb):
    out = embed_raster(int8_tif, conv_bb, tmp_path / "f.tif", tile=16, overlap=0, scale=1.0, progress=False)
    with rasterio.open(out) as src:
        assert src.tags()["GEODINO_INPUT_SCALE"] == "x*1.0"
        assert np.isfinite(src.read()).all()
