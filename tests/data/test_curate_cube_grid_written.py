"""`geodino data curate` writes the grid record of a cube list (`tilelist.cube_grid_record`: north-up marker and
each store's affine as read), so a list freshly curated from a south-up store reads back without the "records no
grid" warning, and one whose store changed grid is refused (5ffb893 added the record and the check on read)."""

from __future__ import annotations

import json
import warnings

import pyarrow.parquet as pq

from geodino import cli
from geodino.data.curate.tilelist import GRID_KEY
from tests.data.test_curate_cube_grid_record import _source, _store

SPEC = "arch:vit_tiny?depth=1&seed=0&layerscale_init=1.0"


def test_a_curated_cube_list_records_its_grid_and_reads_back_silently(tmp_path):
    store = _store(tmp_path / "s.zarr", south_up=True)
    out = tmp_path / "cur"
    argv = ["data", "curate", store, "--type", "cube", "--sensor", "sentinel2_l2a", "--tile-size", "16", "-b", SPEC]
    argv += ["-o", str(out), "--size", "2", "--clusters", "2", "--dedup", "1.0", "--no-progress"]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert cli.main(argv) == 0
    listed = out / "curated.parquet"
    grid = json.loads(pq.read_schema(listed).metadata[GRID_KEY.encode()])
    assert grid["north_up"] is True
    assert list(grid["transforms"].values()) == [[10.0, 0.0, 500000.0, 0.0, -10.0, 4650000.0]]
    src, said = _source(str(listed))
    assert said == [] and len(src) == 2
