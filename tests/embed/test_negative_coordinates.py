"""`--point -119.72,37.11` (and `--bbox` with negative coordinates): argparse took the value for an option and
stopped with "argument --point: expected at least one argument"; the embed parser now joins it to its flag."""

from __future__ import annotations

import numpy as np
import pytest
from rasterio.transform import from_origin

from geodino import cli
from geodino.embed.commands import join_negative_lists

T = from_origin(-120.0, 38.0, 0.05, 0.05)  # lon/lat cells west of Greenwich


def _features(path):
    from tests.embed.test_products import feature_raster

    f = np.random.default_rng(4).normal(size=(8, 20, 30)).astype(np.float32)  # every cell its own vector
    return feature_raster(path, f, "EPSG:4326", transform=T)


def test_similar_point_with_a_negative_longitude(tmp_path, monkeypatch, capsys):
    import rasterio

    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    feats = _features(tmp_path / "f.tif")
    a, b = tmp_path / "a.tif", tmp_path / "b.tif"
    assert cli.main(["embed", "similar", str(feats), "--out", str(a), "--point", "-119.72,37.11"]) == 0
    assert "(cosine similarity to the point -119.72,37.11)" in capsys.readouterr().out
    assert cli.main(["embed", "similar", str(feats), "--out", str(b), "--point=-119.72,37.11"]) == 0
    with rasterio.open(a) as da, rasterio.open(b) as db:
        sa, sb = da.read(1), db.read(1)
    np.testing.assert_array_equal(sa, sb)
    # the query cell: column (-119.72 + 120) / 0.05 = 5.6 -> 5, row (38 - 37.11) / 0.05 = 17.8 -> 17
    assert np.unravel_index(np.nanargmax(sa), sa.shape) == (17, 5) and sa[17, 5] == pytest.approx(1.0, abs=1e-5)


@pytest.mark.parametrize(
    ("argv", "joined"),
    [
        (["--point", "-119.72,37.11"], ["--point=-119.72,37.11"]),
        (["--bbox", "-120.5,37,-119.5,38", "--out", "x"], ["--bbox=-120.5,37,-119.5,38", "--out", "x"]),
        (["--bbox", "-1e3, -2E+2,5,6"], ["--bbox=-1e3, -2E+2,5,6"]),
        # already fine for argparse, or not a number list: left as they are
        (["--point", "-119.72", "37.11"], ["--point", "-119.72", "37.11"]),
        (["--point", "119.72,-37.11"], ["--point", "119.72,-37.11"]),
        (["--point", "-x,1"], ["--point", "-x,1"]),
        (["--point", "--out", "o.tif"], ["--point", "--out", "o.tif"]),
        (["--", "--point", "-1,2"], ["--", "--point", "-1,2"]),
        (["--tile", "-1,2"], ["--tile", "-1,2"]),
    ],
)
def test_join_negative_lists(argv, joined):
    assert join_negative_lists(argv) == joined
