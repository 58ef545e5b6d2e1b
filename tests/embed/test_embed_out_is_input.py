"""`geodino embed in.tif --out in.tif --overwrite` replaced the raster it read by its feature raster (exit 0): now
one line, exit 2, the input untouched; the same path spelled another way (./in.tif) is the same file."""

from __future__ import annotations

import hashlib

from geodino import cli
from tests.embed.conftest import random_image, write_tif
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3&seed=0"


def test_embed_refuses_to_write_over_its_input(tmp_path, capsys, monkeypatch) -> None:
    src = write_tif(tmp_path / "in.tif", random_image(32, 32))
    before = hashlib.sha256(src.read_bytes()).hexdigest()
    monkeypatch.chdir(tmp_path)
    common = ["-b", SPEC, "--tile", "32", "--overlap", "0", "--no-progress", "--overwrite"]
    for out in (str(src), "./in.tif"):
        one_line_exit_2(
            capsys, tmp_path, "embed", "in.tif", "--out", out, *common,
            expect=(f"--out {out} is the input raster that embed reads", "name the output another file"),
        )  # fmt: skip
    assert hashlib.sha256(src.read_bytes()).hexdigest() == before
    assert cli.main(["embed", "in.tif", "--out", "f.tif", *common]) == 0, capsys.readouterr().err
