"""The EPSG:4326 assumption for a lat/lon store without a CRS is said once per store per process: `data stats`, the
training source and `embed` each open the same store, and each open said it again (three warnings of one fact)."""

from __future__ import annotations

import warnings

import numpy as np


def _store(path) -> str:
    """A (band, lat, lon) uint16 store of 20 x 30 cells in degrees, with no CRS anywhere."""
    import xarray as xr

    ys = 45.0 - 0.01 * (np.arange(20) + 0.5)
    xs = 10.0 + 0.01 * (np.arange(30) + 0.5)
    data = np.arange(3 * 20 * 30, dtype="uint16").reshape(3, 20, 30)
    da = xr.DataArray(data, dims=("band", "lat", "lon"), coords={"band": ["B02", "B03", "B04"], "lat": ys, "lon": xs})
    da.to_dataset(name="reflectance").to_zarr(path, zarr_format=2)
    return str(path)


def _said(caught) -> list[str]:
    return [str(w.message) for w in caught if "EPSG:4326" in str(w.message)]


def test_two_opens_of_one_store_warn_once(tmp_path, monkeypatch):
    from geodino.data.cubes import CubeSource, open_cube
    from geodino.data.stats_cube import first_cube_bands

    store = _store(tmp_path / "ll.zarr")
    monkeypatch.chdir(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")  # the default filter's per-line registry would not hide a second call site
        first_cube_bands(store)  # data stats
        CubeSource(store, sensor="sentinel2_l2a", bands=["B02", "B03", "B04"], tile_size=8)  # pretrain / curate
        sc = open_cube("./ll.zarr")  # embed, the same store by another spelling
    said = _said(caught)
    assert len(said) == 1, said
    assert "ll.zarr" in said[0]
    assert sc.crs  # still placed in EPSG:4326 on the later opens


def test_another_store_still_warns(tmp_path):
    from geodino.data.cubes import open_cube

    a, b = _store(tmp_path / "a.zarr"), _store(tmp_path / "b.zarr")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        open_cube(a)
        open_cube(b)
        open_cube(a)
    said = _said(caught)
    assert len(said) == 2 and "a.zarr" in said[0] and "b.zarr" in said[1]


def test_unnamed_in_memory_datasets_warn_each_time(tmp_path):
    """An in-memory object without a `name` has no store to say it once for: each says it (they may differ)."""
    import xarray as xr

    from geodino.data.cubes import open_cube

    ds = xr.open_zarr(_store(tmp_path / "m.zarr"), chunks=None, mask_and_scale=False)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        open_cube(ds)
        open_cube(ds)
    assert len(_said(caught)) == 2
