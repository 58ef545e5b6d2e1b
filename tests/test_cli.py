"""The command shell: every part's commands are registered, errors are one line with exit code 2."""

from __future__ import annotations

import re
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


def test_help_override_example_is_a_valid_override_of_each_command() -> None:
    from geodino.cli import override_example
    from geodino.config import load_config
    from geodino.data.config import DataConfig
    from geodino.embed.config import EmbedConfig
    from geodino.eval.runner import SuiteConfig
    from geodino.train.config import PretrainConfig
    from geodino.train.distill.config import DistillConfig

    assert override_example(PretrainConfig) == "trainer.max_steps=1000"  # not train.max_steps (distill's key)
    assert override_example(DistillConfig) == "train.max_steps=1000"
    source = "sources=[{type: raster, paths: [scenes/]}]"  # a data config needs one to validate
    assert override_example(SuiteConfig) == "name=probe" and hasattr(SuiteConfig(), "name")
    for schema in (PretrainConfig, DistillConfig, EmbedConfig, DataConfig):
        extra = {DataConfig: [source], PretrainConfig: ["data." + source], DistillConfig: ["data." + source]}
        extra = extra.get(schema, [])
        load_config(schema, None, [override_example(schema), *extra])  # unknown keys would raise ConfigError


def test_overrides_after_an_option_are_overrides(capsys, tmp_path) -> None:
    """`key=value` on both sides of an option: argparse alone took only the first run and refused the rest."""
    from pathlib import Path

    from geodino.cli import main

    suite = Path(__file__).parents[1] / "configs" / "eval" / "demo.yaml"
    argv = ["probe", "-c", str(suite), "progress=false", "-b", "baseline:colour", "--out", str(tmp_path / "o")]
    assert main([*argv, f"tasks.demo_landcover.data.root={tmp_path / 'nowhere'}"]) == 2
    assert "nowhere" in capsys.readouterr().err  # the late override was applied: its folder is the one missing
    with pytest.raises(SystemExit) as exc:  # what is not an override stays argparse's error
        main([*argv, "--nope"])
    assert exc.value.code == 2 and "unrecognized arguments: --nope" in capsys.readouterr().err


def test_argument_errors_are_one_line_with_the_closest_option_and_no_abbreviations(capsys):
    """Unknown flags printed argparse's usage block and no suggestion, and `--til 128` was silently read as
    `--tile 128`: every argument error is now one line naming the command, exit code 2."""
    from geodino.cli import main

    cases = {
        ("embed", "in.tif", "--tiles", "128"): r"^geodino embed: error: unrecognized arguments: --tiles 128 "
        r"\(--tiles: did you mean --tile\?\); see geodino embed --help$",
        ("embed", "in.tif", "--til", "128"): r"unrecognized arguments: --til 128 \(--til: did you mean --tile\?\)",
        ("embed", "in.tif", "--dtype", "int16"): r"^geodino embed: error: argument --dtype: invalid choice: 'int16'",
        ("pretrain", "--confg", "x.yaml"): r"--confg: did you mean --config\?",
        ("probe", "--nope"): r"^geodino probe: error: unrecognized arguments: --nope; see geodino probe --help$",
        ("data", "stats", "x"): r"^geodino data stats: error: the following arguments are required",
        # other tools' override flags: a command that takes bare key=value overrides says so
        ("pretrain", "--set", "optim.lr=1e-3"): r"unrecognized arguments: --set \(--set: overrides "
        r"are written bare after the command, e.g\. key=value \(no --set\)\)",
        ("probe", "--opts", "seed=1"): r"\(--opts: overrides are written bare after the command",
        ("embed", "in.tif", "--set", "a=1"): r"arguments: --set a=1 \(--set: did you mean --asset\?\); see",
    }
    for argv, expected in cases.items():
        with pytest.raises(SystemExit) as exc:
            main(list(argv))
        err = capsys.readouterr().err.strip()
        assert exc.value.code == 2 and len(err.splitlines()) == 1 and re.search(expected, err), (argv, err)
