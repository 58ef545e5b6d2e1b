"""Datacubes without a CRS (web-style cubes): `data stats` computes their statistics (no CRS needed), and a cube
source trains on one with `allow_no_crs: true` (tiles in px, no ROI; the run claims no extent for it)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from geodino import cli
from geodino.data.loaders import SourceConfig, build_source, check_sources_have_pixels
from geodino.errors import InputError
from tests.helpers import write_zarr3


def _nocrs(path, seed: int = 0) -> tuple[str, np.ndarray]:
    """A (time, band, y, x) uint16 store with plain pixel coordinates and no CRS anywhere."""
    import xarray as xr

    data = np.random.default_rng(seed).integers(1, 4000, (2, 3, 40, 48)).astype("uint16")
    coords = {"time": np.array(["2024-01-01", "2024-02-01"], dtype="datetime64[ns]"), "band": ["B1", "B2", "B3"],
              "y": np.arange(40) + 0.5, "x": np.arange(48) + 0.5}  # fmt: skip
    write_zarr3(
        xr.DataArray(data, dims=("time", "band", "y", "x"), coords=coords, name="reflectance").to_dataset(), path
    )
    return str(path), data


def test_data_stats_works_on_a_cube_without_crs(tmp_path):
    """Was refused: `datacube ... has no CRS`; statistics need none. Exact over every pixel of both dates."""
    store, data = _nocrs(tmp_path / "web.zarr")
    out = tmp_path / "s.yaml"
    assert cli.main(["data", "stats", store, "--type", "cube", "--out", str(out), "--tile-size", "16"]) == 0
    got = yaml.safe_load(out.read_text())
    assert got["stats"]["pixels"] == [2 * 40 * 48] * 3 and got["stats"]["method"] == "exact: every pixel"
    # uint16 without --scale: the dtype rule, DN / 10000
    np.testing.assert_allclose(got["mean"], data.transpose(1, 0, 2, 3).reshape(3, -1).mean(1) / 1e4, atol=2e-6)


def test_a_cube_source_trains_on_a_store_without_crs_when_allowed(tmp_path):
    store, data = _nocrs(tmp_path / "web.zarr")
    cfg = SourceConfig(
        type="cube", paths=[store], sensor="sentinel2_l2a", band_names=["B02", "B03", "B04"], tile_size=16
    )
    with pytest.raises(InputError, match=r"datacube .*web\.zarr has no CRS .*set `allow_no_crs: true` in the source"):
        build_source(cfg)
    cfg.allow_no_crs = True
    src = build_source(cfg)
    check_sources_have_pixels([src], seed=0)
    s = src.get(0, 0)
    assert s["crs"] == "" and s["image"].shape == (3, 16, 16) and s["valid"].all()
    col, row = round(s["transform"].c), round(s["transform"].f)  # the store's own (pixel) coordinates
    t = {"2024-01-01": 0, "2024-02-01": 1}[s["time"][:10]]
    np.testing.assert_allclose(s["image"], data[t, :, row : row + 16, col : col + 16] * 1e-4, rtol=1e-6)
    from geodino.train.data_extent import training_extent

    extent = training_extent([src])  # no footprint claimed: exports of such a run get no geometry, and say why
    assert extent["geometry"] is None and "have no CRS" in extent["note"]


@pytest.mark.parametrize(
    ("key", "value", "said"), [("tile_units", "m", "tile_units: m"), ("roi", "POINT (1 1)", "a roi")]
)
def test_metres_and_roi_need_a_crs(tmp_path, key, value, said):
    store, _ = _nocrs(tmp_path / "web.zarr")
    cfg = SourceConfig(type="cube", paths=[store], sensor="sentinel2_l2a", band_names=["B02", "B03", "B04"],
                       tile_size=16, allow_no_crs=True)  # fmt: skip
    setattr(cfg, key, value)
    with pytest.raises(InputError, match=rf"datacube .*web\.zarr has no CRS, so {said} cannot be placed on it"):
        build_source(cfg)
