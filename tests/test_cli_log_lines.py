"""geodino's own log warnings (e.g. distillation's heads record, a run folder's note) come out on the command line
as `geodino: warning: ...` lines like its Python warnings: without a handler Python printed the bare message."""

from __future__ import annotations

import logging

from geodino import cli


def test_log_warnings_are_prefixed_lines_and_info_stays_quiet(capsys) -> None:
    assert cli.main([]) == 0  # main installs the handler before it parses anything (no command: the help)
    capsys.readouterr()
    log = logging.getLogger("geodino.distill")
    log.warning("heads file %s belongs to another teacher", "h.pth")
    log.info("resumed from x")
    log.error("gave up")
    assert capsys.readouterr().err == (
        "geodino: warning: heads file h.pth belongs to another teacher\ngeodino: error: gave up\n"
    )
    cli.log_warnings_as_lines()  # once per process: a second main adds no second handler
    assert sum(isinstance(h, cli._LogLines) for h in logging.getLogger("geodino").handlers) == 1


def test_log_lines_have_one_prefix_and_go_above_an_open_bar(capsys) -> None:
    """A message that names geodino itself gets no second prefix; two lines while a bar is open each take a line
    of their own (no blank line between them, the bar redrawn under them)."""
    import sys

    from tqdm import tqdm

    cli.log_warnings_as_lines()
    log = logging.getLogger("geodino.train")
    log.warning("geodino: warning: a note")
    assert capsys.readouterr().err == "geodino: warning: a note\n"
    bar = tqdm(total=4, file=sys.stderr, desc="steps", mininterval=0)
    try:
        log.warning("first")
        log.error("geodino: second")
    finally:
        bar.close()
    shown = [line.rsplit("\r", 1)[-1].rstrip() for line in capsys.readouterr().err.split("\n")]
    assert shown[:2] == ["geodino: warning: first", "geodino: error: second"], shown
    assert shown[2].startswith("steps:   0%"), shown


def test_a_warning_is_shown_once_per_command_across_catch_warnings_blocks() -> None:
    """`probe --seeds 0,1` printed a task's four_last short-backbone warning once per seed: every
    `warnings.catch_warnings` block (the linear head's fit) made Python forget it was shown."""
    import subprocess
    import sys

    code = (
        "import warnings; from geodino import cli; from geodino.backbones.layers import layer_indices\n"
        "warnings.formatwarning = cli._OnceLines()\n"
        "for _ in range(2):\n"
        "    layer_indices('four_last', 2)\n"
        "    with warnings.catch_warnings():\n"
        "        warnings.simplefilter('ignore')\n"
    )
    err = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stderr
    assert err.count("layers=four_last on a backbone with 2 blocks") == 1, err
    assert err.startswith("geodino: warning: layers=four_last") and err.count("\n") == 1, err


def test_each_command_gets_its_own_record_of_shown_warnings(capsys) -> None:
    import warnings

    shown = cli._OnceLines()
    assert shown(UserWarning("a"), UserWarning, "f.py", 1) == "geodino: warning: a\n"
    assert shown(UserWarning("geodino: a"), UserWarning, "g.py", 2) == ""  # the same text, another place
    assert shown(UserWarning("b"), UserWarning, "f.py", 1) == "geodino: warning: b\n"
    assert cli.main([]) == 0
    first = warnings.formatwarning
    assert cli.main([]) == 0
    assert isinstance(first, cli._OnceLines) and warnings.formatwarning is not first  # tests run several commands


def test_a_message_of_several_lines_prints_as_one_prefixed_line(capsys) -> None:
    """scikit-learn's ConvergenceWarning (`embed classify`'s logistic regression) holds line breaks, blank lines and
    indents: its later lines printed without the `geodino: warning:` prefix. Every word stays, on one line."""
    text = "lbfgs failed (status=1):\nSTOP: LIMIT\n\nIncrease max_iter.\nScale the data:\n    https://x.org/a\nSee"
    line = cli._OnceLines()(UserWarning(text), UserWarning, "f.py", 1)
    assert line == (
        "geodino: warning: lbfgs failed (status=1): STOP: LIMIT; Increase max_iter. Scale the data: https://x.org/a; "
        "See\n"
    )
    cli.log_warnings_as_lines()
    logging.getLogger("geodino.embed").warning("geodino: could not read a.tif:\nbad header\n")
    assert capsys.readouterr().err == "geodino: warning: could not read a.tif: bad header\n"
