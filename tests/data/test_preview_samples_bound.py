"""`geodino data preview --samples 100000` ran on with no bound (one figure row per sample, ~0.5 s each): more than
`PREVIEW_MAX_SAMPLES` is one line naming --samples and the most it takes (exit 2), and `write_preview` refuses it in
Python before any file is read."""

from __future__ import annotations

import argparse

import pytest

from geodino import cli
from geodino.data.config import PREVIEW_MAX_SAMPLES, DataConfig, SourceConfig
from geodino.errors import ConfigError


def test_more_samples_than_a_preview_draws_is_one_line(tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli.main(["data", "preview", "--samples", str(PREVIEW_MAX_SAMPLES + 1), "sources=[]"])
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1, err
    assert f"argument --samples/--sample: {PREVIEW_MAX_SAMPLES + 1} is out of range: give a whole number <= " in err[0]
    assert f"<= {PREVIEW_MAX_SAMPLES} (a figure row each" in err[0] and list(tmp_path.iterdir()) == []
    args = cli.build_parser("data").parse_args(["data", "preview", "--samples", str(PREVIEW_MAX_SAMPLES)])
    assert args.samples == PREVIEW_MAX_SAMPLES


def test_write_preview_refuses_too_many_samples_before_reading(tmp_path) -> None:
    from geodino.data.preview import write_preview

    data = DataConfig(sources=[SourceConfig(type="images", paths=[str(tmp_path / "missing")])])  # never read
    with pytest.raises(ConfigError, match=rf"^samples=100000 \(--samples\) is more than one preview draws: at most "
                       rf"{PREVIEW_MAX_SAMPLES} \(a figure row each\)"):  # fmt: skip
        write_preview(data, tmp_path / "p.png", samples=100000)
    assert not (tmp_path / "p.png").exists()


def test_whole_number_takes_an_upper_bound() -> None:
    parse = cli.whole_number(1, 3, " (why)")
    assert parse("3") == 3 and parse("1") == 1
    with pytest.raises(argparse.ArgumentTypeError, match=r"^4 is out of range: give a whole number <= 3 \(why\)$"):
        parse("4")
    with pytest.raises(argparse.ArgumentTypeError, match=r"^0 is out of range: give a whole number >= 1$"):
        parse("0")
    assert cli.whole_number(1)("100000") == 100000  # no maximum: as before
