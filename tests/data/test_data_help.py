"""`geodino data curate/index/preview --help`: every option says what it does and its default, and the defaults
shown are the ones the config dataclass (or the function) uses, so the help cannot drift from the code."""

from __future__ import annotations

import argparse
import dataclasses
import inspect
import re

import pytest

from geodino import cli
from geodino.data.curate import CurateConfig

# option -> CurateConfig field: every curate option with a default worth showing
CURATE_DEFAULTS = {
    "--type": "type",
    "--tile-size": "tile_size",
    "--clusters": "clusters",
    "--resamples": "resamples",
    "--resample-size": "resample_size",
    "--strategy": "strategy",
    "--dedup": "dedup",
    "--max-nodata": "max_nodata",
    "--cloud-rule": "cloud_rule",
    "--cloud-threshold": "cloud_threshold",
    "--max-cloud": "max_cloud",
    "--chunk": "chunk",
    "--batch-size": "batch_size",
    "--workers": "workers",
    "--device": "device",
    "--seed": "seed",
}


def _help(capsys, monkeypatch, *argv: str) -> str:
    monkeypatch.setenv("COLUMNS", "100")
    capsys.readouterr()
    with pytest.raises(SystemExit) as exc:
        cli.main([*argv, "--help"])
    assert exc.value.code == 0
    return capsys.readouterr().out


def _options(text: str) -> dict[str, str]:
    """Each option's help text (whitespace joined) from `--help` output, keyed by its first long flag."""
    body = text.split("options:", 1)[1].split("config keys (defaults):", 1)[0]
    out: dict[str, str] = {}
    for block in re.split(r"\n(?=  -)", body):
        flag = re.search(r"--[a-z-]+", block)
        if flag and flag.group(0) != "--help":
            out[flag.group(0)] = " ".join(block.split())  # flags, metavars, then the help text
    return out


def _shown(value: object) -> str:
    return " ".join(map(str, value)) if isinstance(value, list) else str(value)


def _parser(*argv: str) -> argparse.ArgumentParser:
    from geodino.cli import build_parser, command_parser

    parser = build_parser("data")
    return command_parser(parser, parser.parse_known_args(list(argv))[0])


def test_curate_help_shows_each_default_and_it_is_the_dataclass_default(capsys, monkeypatch):
    opts = _options(_help(capsys, monkeypatch, "data", "curate"))
    defaults = {f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
                for f in dataclasses.fields(CurateConfig)}  # fmt: skip
    parser = _parser("data", "curate", "x", "-b", "arch:vit_tiny", "-o", "o", "--size", "1")
    by_flag = {a.option_strings[0]: a for a in parser._actions if a.option_strings}
    for flag, key in CURATE_DEFAULTS.items():
        assert by_flag[flag].default == defaults[key], flag  # what the CLI passes when the option is not given
        assert f"(default: {_shown(defaults[key])}" in opts[flag], (flag, opts[flag])
    assert "(default: 0.95;" in opts["--dedup"] and "(default: 0.5)" in opts["--max-nodata"]
    # and every curate option has a help string
    assert all(a.help for a in parser._actions if a.option_strings and a.dest != "help" and a.dest != "progress")


def test_index_and_preview_describe_themselves_and_every_option(capsys, monkeypatch):
    text = _help(capsys, monkeypatch, "data", "index")
    assert "Read the header of every raster" in " ".join(text.split())
    opts = _options(text)
    assert set(opts) == {"--sensor", "--on-error", "--out", "--overwrite", "--valid"}
    assert "trace each raster's valid pixels" in opts["--valid"]
    assert "(default: skip)" in opts["--on-error"] and "built-in name" in opts["--sensor"]
    assert opts["--out"].startswith("--out OUT, -o OUT also write the footprints")
    args = _parser("data", "index", "arch/", "-o", "f.geojson").parse_args(["arch/", "-o", "f.geojson"])
    assert args.out == "f.geojson"

    from geodino.data.preview import write_preview

    text = _help(capsys, monkeypatch, "data", "preview")
    assert "Draw --samples samples of the first source" in " ".join(text.split())
    opts = _options(text)
    for flag in ("--out", "--samples", "--seed", "--overwrite", "--config"):
        assert len(opts[flag].split()) > 4, (flag, opts[flag])  # a help string after the flags
    sig = inspect.signature(write_preview).parameters
    assert f"(default: {sig['samples'].default})" in opts["--samples"]
    assert f"(default: {sig['seed'].default})" in opts["--seed"]
    assert "(default: data_preview.png)" in opts["--out"]
