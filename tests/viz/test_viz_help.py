"""`geodino viz`'s help said "attention and patch-similarity maps" as if they were two commands; the similarity map
is `viz attention --point`, and the help now says so (top-level list, `viz --help` and `viz attention`'s entry)."""

from __future__ import annotations

import re

import pytest

from geodino import cli


def _help(capsys, *argv: str) -> str:
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv, "--help"])
    assert exc.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines


def test_viz_help_names_the_similarity_map_as_attention_point(capsys):
    top = _help(capsys)
    assert re.search(
        r"viz look inside a backbone: CLS attention maps \(viz attention\), a patch-similarity map "
        r"\(viz attention --point\)",
        top,
    )
    viz = _help(capsys, "viz")
    assert "a patch-similarity map (viz attention --point)." in viz
    assert "and with --point a patch-similarity map" in viz  # the attention sub-command's entry
    assert "attention and patch-similarity maps" not in top + viz
    assert "--point" in _help(capsys, "viz", "attention")
