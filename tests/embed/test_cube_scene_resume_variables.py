"""A resumed many-scene `geodino embed` checks every started scene before any is written, the datacube variables
it reads (`input_variables`) included. They were added to the run record only when its work folder was written, not
to the preparation the up-front check compares (`PreparedRun.ident`), so a resume of a folder of cubes with another
variable started the other scenes and refused the started one only at its turn; with `on_error="skip"` that scene
was skipped and the run went on instead of being refused."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import pytest

from geodino.embed import sweep
from geodino.embed.scenes import embed_scenes
from geodino.errors import InputError

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=1&seed=0"
OPTS = dict(tile=32, overlap=0, chunk=1, progress=False, scale=1e-4, threads=1)


def _store(path: Path, north: float) -> None:
    """A 64 x 64 Zarr store of one uint16 variable per band (B02, B04, B08), 10 m pixels, top edge at `north`."""
    import rioxarray  # noqa: F401
    import xarray as xr

    rng = np.random.default_rng(int(north) % 89)
    ds = xr.Dataset(
        {b: (("y", "x"), rng.integers(0, 10000, (64, 64)).astype("uint16")) for b in ("B02", "B04", "B08")},
        coords={"y": north - 10 * (np.arange(64) + 0.5), "x": 5e5 + 10 * (np.arange(64) + 0.5)},
    ).rio.write_crs("EPSG:32633")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        ds.to_zarr(path, zarr_format=2)


@pytest.mark.parametrize("on_error", ["stop", "skip"])
def test_a_resume_reading_other_variables_is_refused_before_any_scene(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, on_error: str
) -> None:
    d, out = tmp_path / "in", tmp_path / "out"
    d.mkdir()
    _store(d / "a.zarr", 4e6)
    _store(d / "b.zarr", 4e6 - 640)

    def kill(n_blocks: int, n_rows: int) -> None:  # the sweep's fault seam: killed after one block
        if n_blocks >= 1:
            raise KeyboardInterrupt("simulated kill")

    monkeypatch.setattr(sweep, "_after_row", kill)
    with pytest.raises(KeyboardInterrupt):
        embed_scenes(str(d / "b*.zarr"), backbone=SPEC, out=out, variable="B08", **OPTS)  # b started, a not
    monkeypatch.setattr(sweep, "_after_row", lambda *a: None)
    assert sorted(p.name for p in out.iterdir()) == [".b.tif.partial"]
    with pytest.raises(InputError) as exc:
        embed_scenes(str(d), backbone=SPEC, out=out, variable="B04", resume=True, on_error=on_error, **OPTS)
    assert 'cube variables ["B08"] (this run: ["B04"])' in str(exc.value) and "\n" not in str(exc.value)
    assert sorted(p.name for p in out.iterdir()) == [".b.tif.partial"]  # a not started, b neither skipped nor removed
    assert embed_scenes(str(d), backbone=SPEC, out=out, variable="B08", resume=True, on_error=on_error, **OPTS)
    assert (out / "a.tif").exists() and (out / "b.tif").exists()
