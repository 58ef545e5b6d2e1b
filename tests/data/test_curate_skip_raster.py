"""`data curate --on-error skip` on rasters: a tile whose file fails to read is dropped as nodata, never replaced by
another tile's pixels (the raster source's training-time retry reads the next grid tile instead)."""

from __future__ import annotations

import warnings

import numpy as np
import pandas as pd

from geodino import cli
from tests.data.conftest import tif_folder
from tests.data.test_curate import SPEC


def test_a_truncated_geotiff_among_good_ones_is_dropped_as_nodata(tmp_path):
    folder, _ = tif_folder(tmp_path, 4)  # t1.tif: the header reads (indexing works), the pixels do not
    run = [
        "data",
        "curate",
        str(folder),
        "--type",
        "raster",
        "-b",
        SPEC,
        "--tile-size",
        "32",
        "--size",
        "4",
        "--clusters",
        "2",
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        code = cli.main([*run, "--dedup", "1.0", "--no-progress", "--on-error", "skip", "-o", str(tmp_path / "o")])
    assert code == 0
    tiles = pd.read_parquet(tmp_path / "o" / "tiles.parquet")
    mine = tiles[tiles.path.str.endswith("t1.tif")]
    assert len(mine) == 4
    assert set(mine.status) == {"nodata"} and np.allclose(mine.nodata_share, 1.0), mine[["status", "nodata_share"]]
    others = tiles[~tiles.path.str.endswith("t1.tif")]
    assert (others.status != "nodata").all()
    assert not pd.read_parquet(tmp_path / "o" / "curated.parquet").path.str.endswith("t1.tif").any()
