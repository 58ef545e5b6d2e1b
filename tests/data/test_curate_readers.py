"""`curate --readers N`: the reader processes of the embedding pass (`--workers`, kept, is the same option), and the
`--qa-shadow` switch: both parsed into CurateConfig and described in --help."""

from __future__ import annotations

import re

import pytest

from geodino import cli
from geodino.data.curate import CurateConfig

BASE = ["data", "curate", "x", "-b", "arch:vit_tiny", "-o", "o", "--size", "1"]


def _args(*extra: str):
    from geodino.cli import build_parser

    return build_parser("data").parse_args([*BASE, *extra])


@pytest.mark.parametrize(("flag", "n"), [("--readers", 3), ("--workers", 2)])
def test_readers_and_workers_set_the_reader_processes(flag, n):
    args = _args(flag, str(n))
    assert args.workers == n
    cfg = CurateConfig(**{k: v for k, v in vars(args).items() if k in CurateConfig.__dataclass_fields__})
    assert cfg.workers == n


def test_qa_shadow_is_off_unless_given():
    assert _args().qa_shadow is False and CurateConfig().qa_shadow is False
    assert _args("--qa-shadow").qa_shadow is True


def test_help_says_what_readers_and_qa_shadow_do(capsys, monkeypatch):
    monkeypatch.setenv("COLUMNS", "100")
    with pytest.raises(SystemExit):
        cli.main(["data", "curate", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert re.search(r"--workers N, --readers N processes that read and decode tiles", text)
    assert "the backbone runs in the main process" in text
    assert re.search(r"--qa-shadow .*SCL class 3, QA_PIXEL bit 4", text)
