"""Block and chunk sizes are checked when the options are: max_block_cols=0 (or negative) was taken as one chunk
wide without a word."""

from __future__ import annotations

import pytest

from geodino.embed.config import EmbedConfig
from geodino.errors import ConfigError


@pytest.mark.parametrize("value", [0, -1, -512])
def test_max_block_cols_below_one_is_refused_in_one_line_naming_the_key(value):
    cfg = EmbedConfig(backbone="x", out="o.tif", max_block_cols=value)
    with pytest.raises(ConfigError, match=rf"^max_block_cols={value} must be >= 1") as err:
        cfg.validate()
    assert "\n" not in str(err.value)


@pytest.mark.parametrize(
    ("name", "said"), [("chunk", r"--chunk -8 \(chunk= in Python\)"), ("block_rows", "block_rows=-8")]
)
def test_negative_chunk_and_block_rows_are_refused(name, said):
    with pytest.raises(ConfigError, match=rf"^{said} must be >= 0"):
        EmbedConfig(backbone="x", out="o.tif", **{name: -8}).validate()


def test_positive_and_automatic_values_pass():
    EmbedConfig(backbone="x", out="o.tif", max_block_cols=1, chunk=0, block_rows=0).validate()
    cfg = EmbedConfig(backbone="x", out="o.tif", max_block_cols="64", chunk=16, block_rows=32)
    cfg.validate()
    assert (cfg.max_block_cols, cfg.chunk, cfg.block_rows) == (64, 16, 32)  # text read as the number, as YAML does
    assert type(cfg.max_block_cols) is int
