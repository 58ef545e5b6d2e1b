"""The argument parser of the benchmark scripts (a helper, not a benchmark): argparse with geodino's error rule.

A bad flag or value gets one line, `X.py: error: <what>; see X.py --help`, and exit code 2, as `geodino` answers
(argparse printed its whole usage block first: nine lines for backbone.py). An unknown `--flag` names the closest
known one. Standard library only, so the scripts that need neither torch nor geodino (peer_lightly_train.py) can
use it too.
"""

from __future__ import annotations

import argparse
import difflib
import re
from typing import NoReturn


class Parser(argparse.ArgumentParser):
    """argparse.ArgumentParser whose parse errors are one line (no usage block), exit code 2."""

    def error(self, message: str) -> NoReturn:  # argparse's hook for every parse error
        self.exit(2, f"{self.prog}: error: {message}{self._closest(message)}; see {self.prog} --help\n")

    def _closest(self, message: str) -> str:
        """`(did you mean --x?)` for an unrecognized `--flag` close to a known one, else ''."""
        m = re.match(r"unrecognized arguments: (--[\w-]+)", message)
        if not m:
            return ""
        known = {o[2:]: o for a in self._actions for o in a.option_strings if o.startswith("--")}
        close = difflib.get_close_matches(m.group(1)[2:], known, n=1, cutoff=0.6)  # without the shared dashes
        return f" (did you mean {known[close[0]]}?)" if close else ""


def positive(text: str) -> int:
    """An argparse `type` for counts that must be >= 1 (steps, repeats, batch): a clear line for 0 or -1, where
    the scripts raised a traceback from `statistics.median([])` or divided by zero."""
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"{value} must be >= 1")
    return value


if __name__ == "__main__":  # `make benchmarks` runs every benchmarks/*.py
    print("bench_cli.py: the benchmarks' argument parser (a helper, not a benchmark)")
