"""`geodino.pretrain/distill(cube, bands=...)` with a band name the cube lacks was refused only when the run built
its sources: after the run folder was made and locked (a used folder's leftover `hpc_ckpt_*` moved aside into
`checkpoints/ignored-*`) and the model built, and distill left the missing parents of `out` behind. The names are
now checked against each store before the run starts: one line naming the store, the name and its bands."""

from __future__ import annotations

import numpy as np
import pytest

import geodino
from geodino.errors import InputError
from tests.helpers import write_zarr3
from tests.train.test_pretrain_api_bands import TINY, _cube

LINE = r"^datacube .*cube\.zarr has no band 'B9' \(its bands: B1, B2, B3, B4\); pass bands= names among those$"


@pytest.mark.parametrize("fn", ["pretrain", "distill"])
def test_a_band_the_cube_lacks_is_refused_before_the_run_starts(api_configs, tmp_path, fn):
    store, sensor = _cube(tmp_path)
    args = ("arch:vit_tiny",) if fn == "distill" else ()
    with pytest.raises(InputError, match=LINE):
        getattr(geodino, fn)(*args, store, tmp_path / "a" / "run", sensor=sensor, bands="B4,B9")
    assert api_configs == []  # the run (replaced here) was never started
    assert not (tmp_path / "a").exists()
    # names of the store, in any case and order, pass
    getattr(geodino, fn)(*args, store, tmp_path / "a" / "run", sensor=sensor, bands=["b4", "B1"])
    assert api_configs[-1].data.sources[0].bands == ["b4", "B1"]


def test_names_the_sensor_knows_for_the_stores_bands_pass(api_configs, tmp_path):
    """The store's bands are B02, B03, B04, B08; sentinel2_l2a calls B04 and B08 red and nir: the check matches names
    as the cube source does, so those pass and an unknown one is refused naming the store's bands."""
    import rioxarray  # noqa: F401
    import xarray as xr

    coords = {"band": ["B02", "B03", "B04", "B08"], "y": 100.0 - np.arange(16) - 0.5, "x": np.arange(16) + 0.5}
    da = xr.DataArray(np.ones((4, 16, 16), "uint16"), dims=("band", "y", "x"), coords=coords, name="dn")
    store = tmp_path / "s2.zarr"
    write_zarr3(da.rio.write_crs("EPSG:32633").to_dataset(), store)
    geodino.pretrain(store, tmp_path / "run", sensor="sentinel2_l2a", bands="red,nir")
    assert api_configs[-1].data.sources[0].bands == ["red", "nir"]
    with pytest.raises(InputError, match=r"s2\.zarr has no band 'swir16' \(its bands: B02, B03, B04, B08\)"):
        geodino.pretrain(store, tmp_path / "run", sensor="sentinel2_l2a", bands="red,swir16")
    assert len(api_configs) == 1


def test_a_used_run_folder_is_left_as_it_was(tmp_path):
    """The real run: a folder with a leftover Lightning `hpc_ckpt_1.ckpt` and a killed run's temporary checkpoint
    keeps both (the run's start moved the one aside and removed the other before the band was refused)."""
    store, sensor = _cube(tmp_path)
    out = tmp_path / "used"
    (out / "checkpoints").mkdir(parents=True)
    (out / "hpc_ckpt_1.ckpt").write_text("x")
    (out / "checkpoints" / ".step_00000002.ckpt.tmp-1").write_text("x")
    before = sorted(p.relative_to(out).as_posix() for p in out.rglob("*"))
    with pytest.raises(InputError, match=LINE):
        geodino.pretrain(store, out, steps=1, sensor=sensor, tile_size=16, bands=["B4", "B9"], overrides=TINY)
    assert sorted(p.relative_to(out).as_posix() for p in out.rglob("*")) == before
