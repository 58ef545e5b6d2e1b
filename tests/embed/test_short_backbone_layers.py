"""`layers=four_last` on a backbone of fewer than four blocks gives every block it has, with one warning saying so
(`geodino.backbones.layers`). `geodino embed` printed it twice: once from `prepare` and again from the sweep's
first forward (which resolved the name again). Now once, and the raster is the one its blocks give."""

from __future__ import annotations

import warnings

import numpy as np

from geodino import cli
from tests import helpers
from tests.embed.conftest import random_image, read_all

SPEC = "arch:vit_tiny?depth=2&patch_size=8&bands=3"
WARNING = "layers=four_last on a backbone with 2 blocks gives 2 maps"


def _embed(capsys, src, out, layers: str, *extra: str) -> str:
    argv = ["embed", str(src), "-b", SPEC, "--out", str(out), "--layers", layers, "--tile", "16", "--overlap", "0"]
    code = cli.main([*argv, "--no-progress", "--threads", "1", *extra])
    err = capsys.readouterr().err
    assert code == 0, err
    return err


def test_the_short_backbone_line_is_said_once(tmp_path, capsys):
    src = helpers.write_tif(tmp_path / "in.tif", random_image(32, 32, seed=1))
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")  # every call, not once per place: what is said, not what is shown
        _embed(capsys, src, tmp_path / "four.tif", "four_last", "--batch-size", "1")  # 4 forwards
    assert len([w for w in seen if WARNING in str(w.message)]) == 1, [str(w.message) for w in seen]
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        _embed(capsys, src, tmp_path / "both.tif", "0,1")
    assert not [w for w in seen if "layers=" in str(w.message)]
    np.testing.assert_array_equal(read_all(tmp_path / "four.tif")[0], read_all(tmp_path / "both.tif")[0])
