"""The benchmark scripts answer a bad flag or value in one line, exit code 2, as `geodino` does (argparse printed
its usage block first: nine lines for backbone.py), and a count of 0 (`--steps 0`, `--repeats 0`) is refused there
instead of ending in a traceback from `statistics.median([])`."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import pytest

from tests.benchmarks.conftest import bench_module

BENCH = Path(__file__).resolve().parents[2] / "benchmarks"


def _parser():
    cli = bench_module("bench_cli")
    p = cli.Parser(prog="x.py")
    p.add_argument("--repeats", type=cli.positive, default=3)
    p.add_argument("--out", default="o")
    return p


@pytest.mark.parametrize(
    ("argv", "said"),
    [
        (["--repeast", "2"], "unrecognized arguments: --repeast 2 (did you mean --repeats?); see x.py --help"),
        (["--bogus"], "unrecognized arguments: --bogus; see x.py --help"),
        (["--repeats", "0"], "argument --repeats: 0 must be >= 1; see x.py --help"),
        (["--repeats", "two"], "argument --repeats: 'two' is not a whole number; see x.py --help"),
    ],
)
def test_a_bad_argument_is_one_line_with_exit_code_2(argv, said, capsys):
    with pytest.raises(SystemExit) as stop:
        _parser().parse_args(argv)
    err = capsys.readouterr().err
    assert stop.value.code == 2
    assert err == f"x.py: error: {said}\n"


def test_every_benchmark_parser_is_the_one_line_parser():
    """No script builds a plain argparse.ArgumentParser (whose errors print the usage block)."""
    plain = [
        f.name
        for f in sorted(BENCH.glob("*.py"))
        for node in ast.walk(ast.parse(f.read_text()))
        if isinstance(node, ast.Call) and getattr(node.func, "attr", None) == "ArgumentParser"
    ]
    assert plain == [], plain


def test_a_script_run_with_a_bad_flag_prints_one_line():
    """peer_lightly_train.py needs neither torch nor geodino: the quickest real script to run."""
    p = subprocess.run(
        [sys.executable, str(BENCH / "peer_lightly_train.py"), "--minutes", "0.1", "--outt", "x"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert p.returncode == 2
    assert p.stderr.splitlines() == [
        "peer_lightly_train.py: error: unrecognized arguments: --outt x (did you mean --out?); "
        "see peer_lightly_train.py --help"
    ]
