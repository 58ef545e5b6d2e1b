"""`key=value` overrides go anywhere on the line (README, "Configs reference"), also right after a flag of several
values: `geodino embed in.tif ... --window 0 0 32 32 dtype=float16` refused the window as "must be four whole
numbers" (argparse's nargs="+" took the override as a fifth value), and `--bbox ... dtype=float16` the same."""

from __future__ import annotations

import json

import rasterio

from geodino import cli
from tests.embed.conftest import random_image, write_tif

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3&seed=0"


def _run(tmp_path, *flags):
    src = write_tif(tmp_path / "in.tif", random_image(64, 64))  # EPSG:32633, 10 m, origin 500000, 4000000
    out = tmp_path / "f.tif"
    argv = ["embed", str(src), "--backbone", SPEC, "--out", str(out), "--tile", "64", "--overlap", "0",
            "--no-progress", *flags]  # fmt: skip
    return cli.main(argv), out


def test_an_override_after_window_is_an_override(tmp_path, capsys):
    rc, out = _run(tmp_path, "--window", "8", "8", "32", "32", "dtype=float16")
    assert rc == 0, capsys.readouterr().err
    with rasterio.open(out) as src:
        tags = src.tags()
        assert (src.width, src.height) == (4, 4)
    assert tags["GEODINO_DTYPE"] == "float16" and json.loads(tags["GEODINO_INPUT_WINDOW"]) == [8, 8, 32, 32]


def test_an_override_after_bbox_is_an_override(tmp_path, capsys):
    rc, out = _run(tmp_path, "--bbox", "500080", "3999600", "500400", "3999920", "l2_normalize=true", "dtype=float16")
    assert rc == 0, capsys.readouterr().err
    with rasterio.open(out) as src:
        tags = src.tags()
    assert tags["GEODINO_DTYPE"] == "float16" and tags["GEODINO_L2_NORMALIZE"] == "true"
    assert json.loads(tags["GEODINO_INPUT_WINDOW"]) == [8, 8, 32, 32]


def test_a_short_window_is_still_refused_in_one_line(tmp_path, capsys):
    rc, _ = _run(tmp_path, "--window", "8", "8", "32", "dtype=float16")
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1
    assert "window 8 8 32 must be four whole numbers" in err[0] and "dtype" not in err[0]
