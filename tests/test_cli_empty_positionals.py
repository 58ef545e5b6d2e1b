"""An empty positional (`geodino convert '' OUT`, `convert IN ''`) is refused as an empty option value is: one line
naming the argument, exit 2. It said "checkpoint folder . has no config.json" / "output  must end in" (the empty
word read as the current folder or as a name). The rule is `Parser._get_value`, so it holds for every command."""

from __future__ import annotations

import argparse

import pytest

from geodino import cli


def _positionals(parser: argparse.ArgumentParser, path: str = "geodino"):
    """(command path, parser, action) of every positional of every command, sub-commands walked into."""
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _positionals(sub, f"{path} {name}")
        elif not action.option_strings:
            yield path, parser, action


def test_every_commands_positionals_refuse_an_empty_word(capsys) -> None:
    found = list(_positionals(cli.build_parser()))
    commands = {path for path, _, _ in found}
    assert len(found) >= 10 and {"geodino convert", "geodino embed", "geodino data stats"} <= commands, commands
    for path, parser, action in found:
        with pytest.raises(SystemExit) as exc:
            parser._get_value(action, "")
        err = capsys.readouterr().err.strip().splitlines()
        name = argparse._get_action_name(action)
        assert exc.value.code == 2 and len(err) == 1, (path, err)
        assert f"argument {name}: empty value ''; give a value" in err[0], (path, err)


@pytest.mark.parametrize(
    ("argv", "expect"),
    [
        (["convert", "", "o.pth"], "argument input: empty value ''; give a value;"),
        (["convert", "in.pth", ""], "argument output: empty value ''; give a value or leave it out;"),
        (["convert", "in.pth", " "], "argument output: empty value ' '; give a value or leave it out;"),
        (["embed", "in.tif", "-b", "arch:vit_tiny", "--out", "o.tif", ""], "argument overrides: empty value ''"),
    ],
)
def test_an_empty_positional_is_one_line(argv, expect, tmp_path, monkeypatch, capsys) -> None:
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as exc:
        cli.main(argv)
    err = capsys.readouterr().err.strip().splitlines()
    assert exc.value.code == 2 and len(err) == 1 and expect in err[0], err
    assert list(tmp_path.iterdir()) == []


def test_positionals_left_out_still_take_their_defaults() -> None:
    parser = cli.build_parser()
    args = parser.parse_args(["convert", "in.pth", "--out", "o.pth"])  # the optional positional output left out
    assert args.input == "in.pth" and args.output is None and args.output_flag == "o.pth"
    assert parser.parse_args(["info"]).spec is None
    assert parser.parse_args(["embed", "in.tif", "-b", "x", "--out", "o.tif"]).overrides == []
