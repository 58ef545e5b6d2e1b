"""`geodino embed --bf16` help says what runs: the fast path holds bf16 weights (no autocast); the help said
"bf16 autocast inference", which is only the eager model's (GEODINO_FAST=0) way."""

from __future__ import annotations

import pytest


def test_bf16_help_names_the_fast_path_weights(capsys) -> None:
    from geodino.cli import main

    with pytest.raises(SystemExit):
        main(["embed", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    said = text[text.index("--bf16") : text.index("--bf16") + 120]
    assert "fast path with bf16 weights" in said and "eager model under autocast" in said, said
