"""The line naming a STAC scene's input scaling says where the rule came from: each item's raster:bands scale/offset
went to the scene as band_scale/band_offset, and the line said '(passed)' though the user passed nothing. Now
'(declared by its STAC item: band_scale/band_offset)'; a rule the user gives still says '(passed)'."""

from __future__ import annotations

import re

from geodino import cli
from tests.embed.test_stac_bands import _baseline_items

SPEC = "arch:vit_tiny?depth=1&patch_size=8&bands=3"
RUN = ["--tile", "32", "--overlap", "8", "--no-progress", "--threads", "1", "--asset", "red,green,blue"]


def _rule_lines(err: str) -> list[str]:
    return re.findall(r"geodino: input DN -> reflectance .*", err)


def test_an_items_declared_rule_is_not_passed(tmp_path, capsys):
    items, _ = _baseline_items(tmp_path)
    assert cli.main(["embed", str(items), "-b", SPEC, "--out", str(tmp_path / "f"), *RUN]) == 0
    lines = _rule_lines(capsys.readouterr().err)
    assert len(lines) == 2, lines
    assert (
        lines[1] == "geodino: input DN -> reflectance x*0.0001-0.1 (declared by its STAC item: band_scale/band_offset)"
    )
    assert all(line.endswith("(declared by its STAC item: band_scale/band_offset)") for line in lines), lines


def test_a_users_rule_still_says_passed(tmp_path, capsys):
    items, _ = _baseline_items(tmp_path)
    assert cli.main(["embed", str(items), "-b", SPEC, "--out", str(tmp_path / "f"), "--scale", "1e-4", *RUN]) == 0
    lines = _rule_lines(capsys.readouterr().err)
    assert len(lines) == 2 and all(line.endswith("(passed)") for line in lines), lines
