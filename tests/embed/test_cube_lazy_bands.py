"""A datacube of one variable per band was stacked with xarray's `to_dataarray`, which reads every variable whole:
opening such a store read all its pixels into memory (in a many-scene run, in the header check and again for the
run), and one damaged chunk anywhere failed the open with the codec's traceback. The bands are now stacked lazily
(`geodino.data.cube_stack`): a window reads that window of each variable, a damaged chunk fails only the windows
on it, in one line naming the store and rows (exit 2; skipped under a many-scene `--on-error skip`)."""

from __future__ import annotations

import pickle
import warnings
from pathlib import Path

import numpy as np
import pytest

from geodino.data.cube_stack import stack_variables
from geodino.embed import embed_scenes
from geodino.embed.sources import CubeSource
from geodino.errors import InputError


def _store(path: Path, top: float = 4e6) -> dict[str, np.ndarray]:
    """A 32 x 32 Zarr v2 store of uint16 variables B02, B03, B04 (10 m, EPSG:32633) in 16 x 16 chunks."""
    import rioxarray  # noqa: F401
    import xarray as xr

    rng = np.random.default_rng(int(top) % 89)
    planes = {b: rng.integers(1, 10000, (32, 32)).astype("uint16") for b in ("B02", "B03", "B04")}
    ds = xr.Dataset(
        {b: (("y", "x"), a) for b, a in planes.items()},
        coords={"y": top - 10 * (np.arange(32) + 0.5), "x": 5e5 + 10 * (np.arange(32) + 0.5)},
    ).rio.write_crs("EPSG:32633")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, zarr_format=2, encoding={b: {"chunks": (16, 16)} for b in planes})
    return planes


def test_stacked_bands_read_lazily_as_to_dataarray_would(tmp_path: Path) -> None:
    import xarray as xr

    planes = _store(tmp_path / "s.zarr")
    ds = xr.open_zarr(tmp_path / "s.zarr", chunks=None, mask_and_scale=False)
    lazy, eager = stack_variables(ds, ["B04", "B02"]), ds[["B04", "B02"]].to_dataarray(dim="band", name=None)
    assert lazy.dims == eager.dims and list(lazy["band"].values) == ["B04", "B02"] and lazy.dtype == eager.dtype
    np.testing.assert_array_equal(lazy.values, eager.values)
    window = lazy.isel(band=[1, 0], y=slice(20, 3, -2), x=slice(5, 30)).values  # any outer/negative-step key
    np.testing.assert_array_equal(window, np.stack([planes["B02"], planes["B04"]])[:, 20:3:-2, 5:30])
    np.testing.assert_array_equal(lazy.isel(band=0, x=7).values, planes["B04"][:, 7])
    again = pickle.loads(pickle.dumps(lazy.isel(y=slice(4, 12))))  # as a spawned worker or DataLoader gets it
    np.testing.assert_array_equal(again.values, eager.values[:, 4:12])


def test_a_damaged_chunk_fails_only_its_windows_in_one_line(tmp_path: Path, conv_bb) -> None:
    store = tmp_path / "in" / "b.zarr"
    store.parent.mkdir()
    planes = _store(store, 4e6 - 320)
    (store / "B03" / "1.1").write_bytes(b"damaged")  # the bottom-right chunk of the second band
    src = CubeSource(str(store), bands=[1, 2, 3])  # opens: nothing is read yet
    data, ok = src.read_inside(0, 16, 0, 16)
    np.testing.assert_array_equal(data, np.stack([planes[b][:16, :16] for b in ("B02", "B03", "B04")]))
    assert ok.all()
    with pytest.raises(InputError, match=r"^cannot read datacube .*b\.zarr at rows 8\.\.24, columns 10\.\.20 \("):
        src.read_inside(8, 24, 10, 20)

    _store(tmp_path / "in" / "a.zarr")
    out = tmp_path / "f"
    opts = {"tile": 32, "overlap": 8, "progress": False, "scale": 1e-4, "bands": [1, 2, 3]}
    with pytest.warns(UserWarning, match=r"skipped scene b .*truncated or corrupt; re-download or re-create it"):
        embed_scenes(tmp_path / "in", backbone=conv_bb, out=out, on_error="skip", **opts)
    assert sorted(p.name for p in out.glob("*.tif")) == ["a.tif"] and (out / "b.skipped.json").exists()
