"""`--world-size N` with `--no-progress`: a rank's lines (input scaling, inference path) are held for its last line,
'wrote', which only the rank that finishes last prints; rank 0 finishing first printed nothing at all. Now a rank
whose blocks are done while another works prints its lines and one saying who writes the output."""

from __future__ import annotations

from geodino import cli
from tests import helpers
from tests.embed.conftest import random_image

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
RUN = [
    "--tile",
    "32",
    "--overlap",
    "8",
    "--no-progress",
    "--threads",
    "1",
    "--world-size",
    "2",
    "chunk=2",
    "block_rows=2",
]


def test_rank_0_done_first_says_its_lines(tmp_path, capsys):
    src = helpers.write_tif(tmp_path / "in.tif", random_image(64, 64, seed=1))
    out = tmp_path / "f.tif"
    capsys.readouterr()
    assert cli.main(["embed", str(src), "-b", SPEC, "--out", str(out), *RUN, "--rank", "0"]) == 0
    err = capsys.readouterr().err
    assert not out.exists()  # rank 1's blocks are still to do
    assert "geodino: input DN -> reflectance x/255 (the default for uint8 input" in err, err
    assert "geodino: inference path" in err, err
    assert f"geodino: rank 0 of --world-size 2: its blocks are done; the last rank to finish writes {out}" in err
    assert cli.main(["embed", str(src), "-b", SPEC, "--out", str(out), *RUN, "--rank", "1"]) == 0
    err = capsys.readouterr().err
    assert out.exists() and f"geodino: wrote {out}" in err, err
    assert "rank 1 of" not in err and "input DN" not in err  # the lines are rank 0's to say, once


def test_a_rank_outside_the_world_size_is_named_as_the_cli_takes_it(tmp_path, capsys):
    """`--rank 1` without --world-size read 'rank=1 must be in 0..0 for world_size=1': Python names, no fix."""
    src = helpers.write_tif(tmp_path / "in.tif", random_image(64, 64, seed=1))
    out = tmp_path / "f.tif"
    assert cli.main(["embed", str(src), "-b", SPEC, "--out", str(out), "--rank", "1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (
        "geodino: error: --rank 1 (rank= in Python) must be in 0..0 for --world-size 1; pass --world-size with it "
        "(the number of ranks, each run with its --rank 0..N-1)"
    ), err
    assert cli.main(["embed", str(src), "-b", SPEC, "--out", str(out), "--world-size", "2", "--rank", "2"]) == 2
    assert capsys.readouterr().err.strip().endswith("for --world-size 2; ranks count from 0: pass --rank 0..1")
    assert not out.exists()
