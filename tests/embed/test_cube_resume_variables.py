"""A resumed `geodino embed` of a datacube must read the variables it was started with. The run record held the
band count and the options, not which variables they picked: variable=B08 resumed as variable=B04 (both one band),
or a store rewritten with one more variable (--bands 1,2,3,4 now stacking B02, B03, B04, B05 instead of B08), gave a
raster whose blocks embed different bands, silently. The record now holds `input_variables` (in band order) and a
resume reading others is refused in one line naming them and the way out."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import rasterio

from geodino.embed import embed_raster
from geodino.embed.workdir import PLAN_FILE, work_dir_for
from geodino.errors import InputError

OPTS: dict[str, Any] = dict(tile=32, overlap=0, chunk=2, progress=False, scale=1e-4, threads=1)
ONE = "arch:vit_tiny?depth=1&patch_size=8&bands=1&seed=0"
FOUR = ONE.replace("bands=1", "bands=4")


def _store(path: Path, names: tuple[str, ...]) -> Path:
    """A 64 x 64 Zarr store of one uint16 variable per band (each band's values from its name: the same variable
    holds the same pixels in every store)."""
    import rioxarray  # noqa: F401
    import xarray as xr

    grid = {"y": 4e6 - 10 * (np.arange(64) + 0.5), "x": 5e5 + 10 * (np.arange(64) + 0.5)}
    ds = xr.Dataset(
        {b: (("y", "x"), np.random.default_rng(int(b[1:])).integers(0, 10000, (64, 64)).astype("uint16"))
         for b in names},
        coords=grid,
    )  # fmt: skip
    ds.rio.write_crs("EPSG:32633", inplace=True).to_zarr(path, zarr_format=2, mode="w")
    return path


def _partial(src: Path, spec: str, out: Path, **kw: Any) -> dict[str, Any]:
    """Start `out` and stop half-way (rank 0 of 2 writes half the blocks): the partial output a killed run leaves."""
    embed_raster(str(src), spec, out, world_size=2, rank=0, **OPTS, **kw)
    assert not out.exists()
    return json.loads((work_dir_for(out) / PLAN_FILE).read_text())


def test_resume_with_another_variable_is_refused(tmp_path: Path) -> None:
    src = _store(tmp_path / "c.zarr", ("B02", "B03", "B04", "B08"))
    out = tmp_path / "o.tif"
    assert _partial(src, ONE, out, variable="B08")["input_variables"] == ["B08"]
    with pytest.raises(InputError) as exc:
        embed_raster(str(src), ONE, out, resume=True, variable="B04", **OPTS)
    line = str(exc.value)
    assert "\n" not in line and 'cube variables ["B08"] (this run: ["B04"])' in line
    assert "variable=, --sensor and --bands" in line and "--overwrite" in line
    assert not out.exists()
    embed_raster(str(src), ONE, out, resume=True, variable="B08", **OPTS)  # the same variable finishes it
    assert out.exists()


def test_resume_on_a_store_stacking_other_variables_is_refused(tmp_path: Path) -> None:
    src = _store(tmp_path / "c.zarr", ("B02", "B03", "B04", "B08"))
    out = tmp_path / "o.tif"
    assert _partial(src, FOUR, out, bands=[1, 2, 3, 4])["input_variables"] == ["B02", "B03", "B04", "B08"]
    _store(src, ("B02", "B03", "B04", "B05", "B08"))  # rewritten with B05: bands 1..4 are B02..B05 now
    with pytest.raises(InputError, match=r'cube variables \["B02", "B03", "B04", "B08"\] \(this run: \["B02", '
                                         r'"B03", "B04", "B05"\]\)'):  # fmt: skip
        embed_raster(str(src), FOUR, out, resume=True, bands=[1, 2, 3, 4], **OPTS)
    _store(src, ("B02", "B03", "B04", "B08"))  # the store it was started on: resumed
    embed_raster(str(src), FOUR, out, resume=True, bands=[1, 2, 3, 4], **OPTS)
    embed_raster(str(src), FOUR, tmp_path / "whole.tif", bands=[1, 2, 3, 4], **OPTS)
    with rasterio.open(out) as a, rasterio.open(tmp_path / "whole.tif") as b:
        np.testing.assert_allclose(a.read(), b.read(), rtol=1e-5, atol=1e-6)


def test_a_record_without_the_variables_resumes_as_before(tmp_path: Path) -> None:
    """A partial output an earlier version started (no `input_variables`) is not refused for lacking it."""
    src = _store(tmp_path / "c.zarr", ("B02", "B03", "B04", "B08"))
    out = tmp_path / "o.tif"
    record = _partial(src, ONE, out, variable="B08")
    del record["input_variables"]
    (work_dir_for(out) / PLAN_FILE).write_text(json.dumps(record))
    embed_raster(str(src), ONE, out, resume=True, variable="B08", **OPTS)
    embed_raster(str(src), ONE, tmp_path / "whole.tif", variable="B08", **OPTS)  # B08's features, in one run
    with rasterio.open(out) as a, rasterio.open(tmp_path / "whole.tif") as b:
        np.testing.assert_allclose(a.read(), b.read(), rtol=1e-5, atol=1e-6)
