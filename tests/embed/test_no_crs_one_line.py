"""An input with neither CRS nor geotransform is refused in one line (docs/embed.md, Errors): rasterio's
NotGeoreferencedWarning came first as a second line, `geodino: warning: Dataset has no geotransform, gcps, or rpcs.
The identity matrix will be returned.`, before `input ... has no CRS; set one ... or pass --allow-no-crs`."""

from __future__ import annotations

import warnings

import numpy as np
import rasterio

from geodino import cli

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3&seed=0"


def _plain_tif(path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # rasterio warns when writing a raster without georeferencing too
        with rasterio.open(path, "w", driver="GTiff", width=32, height=32, count=3, dtype="uint8") as dst:
            dst.write(np.full((3, 32, 32), 100, np.uint8))
    return path


def test_no_crs_is_one_line(tmp_path, capsys):
    """Warnings are recorded here (pytest would otherwise capture them away from stderr): none may come with it."""
    src = _plain_tif(tmp_path / "plain.tif")
    argv = ["embed", str(src), "--backbone", SPEC, "--out", str(tmp_path / "f.tif"), "--tile", "32", "--overlap", "0"]
    with warnings.catch_warnings(record=True) as held:
        warnings.simplefilter("always")
        assert cli.main(argv) == 2
    assert not [str(w.message) for w in held if "geotransform" in str(w.message)]
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1, err
    assert "has no CRS" in err[0] and "--allow-no-crs" in err[0]


def test_allow_no_crs_runs_without_the_rasterio_warning(tmp_path):
    """Asked for with --allow-no-crs: rasterio's warning came twice more (the scale-tag read, the reader's handle)."""
    src = _plain_tif(tmp_path / "plain.tif")
    out = tmp_path / "f.tif"
    argv = ["embed", str(src), "--backbone", SPEC, "--out", str(out), "--tile", "32", "--overlap", "0",
            "--allow-no-crs", "--no-progress"]  # fmt: skip
    with warnings.catch_warnings(record=True) as held:
        warnings.simplefilter("always")
        assert cli.main(argv) == 0
    assert not [str(w.message) for w in held if "geotransform" in str(w.message)]
    assert out.exists()
