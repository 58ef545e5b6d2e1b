"""`crs:`/`res:` reproject raster scenes (a WarpedVRT); on a cube source they were dropped without a word, so a config
asking for one grid (crs: EPSG:3857, res: 30) trained on each store's own CRS and pixel size. Refused in one line."""

from __future__ import annotations

import pytest

from geodino.data.loaders import SourceConfig, build_source
from geodino.errors import ConfigError


@pytest.mark.parametrize(("keys", "said"), [({"crs": "EPSG:3857", "res": 30.0}, "crs: EPSG:3857, res: 30.0"),
                                            ({"res": 10.0}, "sets res: 10.0,")])  # fmt: skip
def test_a_cube_source_refuses_the_raster_reprojection_keys(tmp_path, keys, said):
    cfg = SourceConfig(type="cube", name="cubes", paths=[str(tmp_path / "c.zarr")], sensor="sentinel2_l2a", **keys)
    with pytest.raises(ConfigError) as err:
        build_source(cfg)
    text = str(err.value)
    assert "\n" not in text and "source 'cubes' (type cube)" in text and said in text
    assert "reproject raster scenes only" in text and ".rio.reproject" in text
