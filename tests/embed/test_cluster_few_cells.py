"""`embed cluster --k 8` on a feature raster of fewer valid cells said "has 4 valid pixels, fewer than k=8" without
the flag's spelling or what to do; it names `--k` and the largest k that works now (one line, exit 2)."""

from __future__ import annotations

import numpy as np

from geodino import cli
from tests.embed.test_classify import feature_raster


def test_k_above_the_valid_cells_names_the_flag_and_the_k_that_works(tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(cli, "COMMAND_MODULES", ("geodino.embed.commands",))
    feats = feature_raster(tmp_path / "f.tif", np.random.default_rng(0).normal(size=(8, 2, 2)))
    out = tmp_path / "c.tif"
    code = cli.main(["embed", "cluster", str(feats), "--out", str(out), "--k", "8"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(lines) == 1 and not out.exists(), lines
    assert lines[0].endswith("has 4 valid cells, fewer than --k 8; pass --k 4 or fewer (k= in Python)")
    assert cli.main(["embed", "cluster", str(feats), "--out", str(out), "--k", "4"]) == 0 and out.exists()
