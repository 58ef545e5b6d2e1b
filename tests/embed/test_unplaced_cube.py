"""A datacube with a CRS whose x/y coordinates place no regular grid (unevenly spaced): embed warned "read without
a CRS" and then refused with "has no CRS; set one (rioxarray write_crs)", advice for another store (this one has a
CRS). Now one line with the reason; under --allow-no-crs one warning with it, and the run goes on in pixels."""

from __future__ import annotations

import numpy as np

from geodino import cli
from tests.data.test_cube_grid_checks import LEFT, RES, _data, _stack_store

BACKBONE = "arch:vit_tiny?patch_size=8&depth=1&bands=4&seed=0"


def _uneven(tmp_path) -> str:
    x = LEFT + RES * (np.arange(16) + 0.5)
    x[8:] += 5.0
    return _stack_store(tmp_path / "irregular.zarr", _data(), {}, x=x)


def test_embed_refuses_an_unplaced_cube_with_its_reason(tmp_path, capsys):
    argv = [
        "embed",
        _uneven(tmp_path),
        "--backbone",
        BACKBONE,
        "--out",
        str(tmp_path / "f.tif"),
        "--time",
        "2024-01-01",
    ]
    assert cli.main(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "x coordinates are not evenly spaced (steps from 10 to 15)" in err and "--allow-no-crs" in err
    assert "has no CRS" not in err and "read without a CRS" not in err and len(err.splitlines()) == 1
    assert not (tmp_path / "f.tif").exists()


def test_allow_no_crs_embeds_it_in_pixels_with_one_warning(tmp_path, recwarn):
    out = tmp_path / "f.tif"
    argv = ["embed", _uneven(tmp_path), "--backbone", BACKBONE, "--out", str(out), "--time", "2024-01-01"]
    assert cli.main([*argv, "--allow-no-crs", "--no-progress"]) == 0
    said = [str(w.message) for w in recwarn if "x coordinates are not evenly spaced" in str(w.message)]
    assert len(said) == 1 and said[0].endswith("--allow-no-crs embeds it in pixel coordinates"), said
    import rasterio

    with rasterio.open(out) as src:
        assert src.crs is None and (src.width, src.height) == (2, 2)
