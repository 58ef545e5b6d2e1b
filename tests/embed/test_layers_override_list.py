"""A `layers=[...]` override (a YAML list of block indices) said "Cannot convert 'ListConfig' to string": it is now
read as the text `--layers` takes (`layers=[-1]` is `--layers -1`), a block past the backbone's depth is one line
naming the depth, and a bracket value that is no list of block indices is one line naming layers (exit 2)."""

from __future__ import annotations

import pytest

from geodino import cli
from geodino.config import load_config
from geodino.embed.config import EmbedConfig
from geodino.errors import ConfigError
from tests.embed.conftest import random_image, write_tif
from tests.test_bad_inputs import one_line_exit_2

SPEC = "arch:vit_tiny?depth=2&patch_size=8&bands=3&seed=0"


def _argv(tmp_path, *extra: str) -> list[str]:
    src = write_tif(tmp_path / "in.tif", random_image(32, 32))
    out = str(tmp_path / "f.tif")
    return ["embed", str(src), "-b", SPEC, "--out", out, "--tile", "32", "--overlap", "0", "--no-progress", *extra]


@pytest.mark.parametrize(
    ("value", "want"), [("[4, 8,11]", "4,8,11"), ("[-2,-1]", "-2,-1"), ("['3']", "3"), ("last", "last")]
)
def test_a_list_override_is_the_flags_text(value: str, want: str) -> None:
    assert load_config(EmbedConfig, None, ["tile=64", f"layers={value}"]).layers == want  # as embed reads them


def test_a_value_that_is_not_yaml_says_so() -> None:
    with pytest.raises(ConfigError, match=r"^override 'layers=\[1,2': value '\[1,2' is not valid YAML"):
        load_config(EmbedConfig, None, ["layers=[1,2"])


@pytest.mark.parametrize("value", ["[]", "[a]", "[1.5]", "[true]", "{a: 1}", "[[1]]"])
def test_a_bracket_value_that_names_no_blocks_is_one_line(value: str) -> None:
    with pytest.raises(ConfigError, match=r"^override 'layers=.*' is not a list of block indices; use last, ") as e:
        load_config(EmbedConfig, None, [f"layers={value}"])
    assert "layers=[4,8,11]" in str(e.value) and "\n" not in str(e.value)


def test_a_list_override_embeds_the_blocks(tmp_path, capsys) -> None:
    import rasterio

    assert cli.main(_argv(tmp_path, "layers=[-2,-1]")) == 0, capsys.readouterr().err
    with rasterio.open(tmp_path / "f.tif") as src:
        assert src.count == 2 * 192  # two blocks of vit_tiny (192 wide), concatenated


def test_a_block_past_the_depth_names_the_depth(tmp_path, capsys) -> None:
    argv = _argv(tmp_path, "layers=[99]")
    one_line_exit_2(capsys, tmp_path, *argv, expect=("layers=99 (--layers): layer index 99", "2 blocks (0..1)"))
    line = one_line_exit_2(capsys, tmp_path, *_argv(tmp_path, "layers=[a]"), expect=("layers=[a]",))
    assert "ListConfig" not in line
