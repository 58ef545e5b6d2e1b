"""embed --out of a long name: a 247-byte `X.zarr` was embedded whole, then its STAC item `X.zarr.stac.json`
(257 bytes) failed with `File name too long`; that name is refused before any work, and a 245-byte COG (whose
work folder `.X.partial` would pass 255 bytes uncut) is written with its item."""

from __future__ import annotations

import numpy as np
import pytest

from geodino.embed import embed_raster
from geodino.errors import InputError
from tests.embed.conftest import write_tif


def test_long_output_names(tmp_path, conv_bb) -> None:
    src = write_tif(tmp_path / "in.tif", np.random.default_rng(0).random((3, 32, 32), dtype=np.float32))
    store = tmp_path / f"{'é' * 60}{'x' * 122}.zarr"
    with pytest.raises(InputError, match=r"output's STAC item .*\.zarr\.stac\.json: the name .* is 257 bytes"):
        embed_raster(src, conv_bb, store, progress=False)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["in.tif"]
    cog = tmp_path / f"{'é' * 60}{'x' * 121}.tif"
    assert len(cog.name.encode()) == 245
    assert embed_raster(src, conv_bb, cog, progress=False) == cog
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["in.tif", cog.name, cog.stem + ".stac.json"])
