"""`--layers -2,` (a trailing comma): argparse took `-2,` for an unknown option ("expected one argument", the value
not named), and `--layers 1,,` / `,1` / a `layers=-2,` override were read as [1] / [-2] without a word (a block left
out?). Each is now one line naming --layers (or layers=) and the value, exit 2; `-2,-1` and `4,8,11` as before."""

from __future__ import annotations

import argparse

import pytest

from geodino import cli
from geodino.embed.backbone import parse_layers
from geodino.errors import ConfigError
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=2&patch_size=8&bands=3"


@pytest.mark.parametrize("value", ["-2,", "-2,,-1", "1,,", ",1"])
def test_an_empty_block_index_is_one_line_naming_the_flag(capsys, tmp_path, value: str) -> None:
    argv = ["embed", str(tmp_path / "in.tif"), "-b", SPEC, "--out", str(tmp_path / "o.tif")]
    with pytest.raises(SystemExit) as exc:  # argparse's own exit: refused before anything is opened
        cli.main([*argv, "--layers", value])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1, err
    assert "argument --layers:" in err[0] and f"{value!r} has an empty block index" in err[0]
    one_line_exit_2(capsys, tmp_path, *argv, f"layers={value}", expect=(f"{value!r}",))  # `,1`: not YAML, said so
    with pytest.raises(ConfigError, match="empty block index"):
        parse_layers(value)


def test_block_lists_and_names_still_parse() -> None:
    from geodino.embed.backbone import layers_flag  # the flag's reader (new: imported here, so the test above runs
    # on the code before it)

    assert parse_layers("-2,-1") == [-2, -1] and parse_layers(" 4, 8,11 ") == [4, 8, 11]
    assert layers_flag("-2,-1") == "-2,-1" and layers_flag("four_last") == "four_last"
    with pytest.raises(argparse.ArgumentTypeError, match=r"^'a' is not valid"):
        layers_flag("a")
