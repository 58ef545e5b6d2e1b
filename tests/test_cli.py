"""The command shell: every part's commands are registered, errors are one line with exit code 2."""

from __future__ import annotations

import subprocess
import sys

import pytest

from geodino import cli


def test_every_command_is_registered(capsys):
    parser = cli.build_parser()
    sub = next(a for a in parser._actions if a.dest == "command")
    assert set(cli.COMMANDS) <= set(sub.choices)
    assert cli.main([]) == 0
    assert "pretrain" in capsys.readouterr().out


@pytest.mark.parametrize("command", sorted(cli.COMMANDS))
def test_help_of_each_command(command, capsys):
    with pytest.raises(SystemExit) as exc:
        cli.main([command, "--help"])
    assert exc.value.code == 0
    assert command in capsys.readouterr().out


def test_user_error_is_one_line_exit_2():
    proc = subprocess.run(
        [sys.executable, "-m", "geodino.cli", "info", "arch:vit_nope"], capture_output=True, text=True, timeout=120
    )
    assert proc.returncode == 2
    lines = [ln for ln in proc.stderr.splitlines() if ln.strip()]
    assert len(lines) == 1 and lines[0].startswith("geodino: error:") and "vit_small" in lines[0]
    debug = subprocess.run(
        [sys.executable, "-m", "geodino.cli", "--debug", "info", "arch:vit_nope"], capture_output=True, text=True
    )
    assert "Traceback" in debug.stderr


def test_import_geodino_is_light():
    heavy = "('torch', 'rasterio', 'lightning', 'torchgeo')"
    code = f"import sys, geodino; print([m for m in {heavy} if m in sys.modules])"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout.strip()
    assert out == "[]"
