"""The line `viz attention` prints names the mass as given, as the COG band and the panel title do (mass_percent):
it was rounded to a whole percent, so --mass 0.004 printed `hold 0% of the mean attention` and --mass 0.605 `60%`."""

from __future__ import annotations

import pytest

from geodino import cli
from tests.embed.conftest import random_image, write_tif


@pytest.mark.parametrize("mass, shown", [("0.004", "0.4%"), ("0.605", "60.5%"), ("0.6", "60%")])
def test_the_printed_mass_is_the_mass_given(tmp_path, capsys, mass, shown):
    tif = write_tif(tmp_path / "s.tif", random_image(32, 32))
    args = ["viz", "attention", str(tif), "-b", "arch:vit_tiny?depth=1", "--sensor", "imagenet"]
    assert cli.main([*args, "-o", str(tmp_path / "a"), "--mass", mass]) == 0
    line = capsys.readouterr().out.splitlines()[0]
    assert line.endswith(f"hold {shown} of the mean attention"), line
