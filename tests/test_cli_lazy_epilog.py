"""The config keys a command's help lists are described when the help is shown, not while a command is parsed."""

from __future__ import annotations

import pytest


def test_config_keys_are_described_only_when_the_help_is_shown(monkeypatch: pytest.MonkeyPatch) -> None:
    import geodino.config as config
    from geodino.cli import build_parser, command_parser

    real, calls = config.describe, []
    monkeypatch.setattr(config, "describe", lambda schema: calls.append(schema) or real(schema))
    parser = build_parser("embed")
    args, _ = parser.parse_known_args(["embed", "in.tif", "-b", "arch:vit_tiny", "--out", "o.tif"])
    assert calls == []  # parsing a command that runs: nothing described
    text = command_parser(parser, args).format_help()
    assert len(calls) == 1 and "tile=" in text.replace(" ", "")
    command_parser(parser, args).format_help()
    assert len(calls) == 1  # described once
