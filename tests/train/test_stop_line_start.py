"""The stop request's line starts a new line only when a progress bar is open (the message would land on the bar's
line); with the bar off it printed a stray blank line first."""

from __future__ import annotations

import signal

from tqdm import tqdm

from geodino.train.stop import StopRequest


def test_the_stop_line_breaks_the_line_only_after_an_open_bar(capsys) -> None:
    StopRequest()._handle(signal.SIGTERM, None)
    assert capsys.readouterr().err.startswith("geodino: SIGTERM received: stopping after this step")
    bar = tqdm(range(3), disable=False)
    try:
        capsys.readouterr()
        StopRequest()._handle(signal.SIGINT, None)
        assert capsys.readouterr().err.startswith("\ngeodino: SIGINT received: ")
    finally:
        bar.close()
