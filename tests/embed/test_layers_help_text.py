"""`--layers` help, the `EmbedConfig.layers` comment and docs/embed.md name every choice `parse_layers` takes since
cd448c2: `four_even_official` and negative indices (`--layers -2,-1`, without `=` since 6a049b7; `=` works too)."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parents[2] / "docs" / "embed.md"


def test_embed_help_names_four_even_official_and_negative_indices(capsys) -> None:
    from geodino.cli import main

    with pytest.raises(SystemExit) as info:
        main(["embed", "--help"])
    assert info.value.code == 0
    text = " ".join(capsys.readouterr().out.split())  # argparse wraps lines
    start = text.index("--layers LAYERS")
    layers_help = text[start : start + 300]
    assert "four_even_official" in layers_help and "--layers -2,-1" in layers_help, layers_help


def test_every_choice_named_in_the_help_is_taken_by_parse_layers() -> None:
    from geodino.embed.backbone import parse_layers

    for name in ("last", "four_last", "four_even", "four_even_official"):
        assert parse_layers(name) == name
    assert parse_layers("-2,-1") == [-2, -1]


def test_embed_config_layers_comment_and_docs_vectors_paragraph() -> None:
    from geodino.embed import config

    lines = [ln.strip() for ln in inspect.getsource(config.EmbedConfig).splitlines()]
    i = next(k for k, ln in enumerate(lines) if ln.startswith("layers: str"))
    said = " ".join([*(ln for ln in lines[i - 2 : i] if ln.startswith("#")), lines[i]])  # comment above or beside
    assert "four_even_official" in said and "-2,-1" in said, said
    vectors = DOCS.read_text().split("**Vectors.**", 1)[1].split("**Input.**", 1)[0]
    assert "four_even_official" in vectors and ("--layers -2,-1" in vectors or "--layers=-2,-1" in vectors)
