"""The command line's warning and log lines: each Python warning and each `geodino` log warning or error as one
`geodino: warning: ...` (`error: ...`) line on stderr, its text's line breaks folded, once per command, written
above any open progress bar. `geodino.cli.main` installs them unless `--debug` is given."""

from __future__ import annotations

import logging
import sys


def _one_line_warning(message: Warning | str, category: type[Warning], filename: str, lineno: int, line=None) -> str:
    """`geodino: warning: ...` on a line of its own: the open progress bars' lines are blanked first (the warning
    takes the bar's line; the bar redraws below at its next update); it landed on the bar's line (`embed images:
    0%|...| 0/7 [00:00<?, ?img/s]geodino: warning: skipped unreadable image ...`). Only the text changes:
    `warnings.catch_warnings` (pytest.warns) still records it, unformatted."""
    from geodino.progress import clear_bars

    clear_bars()
    return f"geodino: warning: {_bare(str(message))}\n"


def _one_line(text: str) -> str:
    """`text` with its line breaks folded (`; `, or a space after `:;,.`), blank lines and indents dropped, no word
    lost: a warning of several lines (scikit-learn's ConvergenceWarning from `embed classify`'s logistic regression,
    an exception's text) printed its later lines without the `geodino: warning:` prefix."""
    parts = [part.strip() for part in text.splitlines() if part.strip()]
    out = parts[0] if parts else text.strip()
    for part in parts[1:]:
        out += (" " if out.endswith((":", ";", ",", ".")) else "; ") + part
    return out


def _bare(message: str) -> str:
    """The message without a `geodino:` (and `warning:`/`error:`) head of its own: the line gets one prefix, not
    `geodino: warning: geodino: ...`; line breaks folded (`_one_line`)."""
    message = _one_line(message)
    if message.startswith("geodino:"):
        message = message.removeprefix("geodino:").lstrip()
        for word in ("warning:", "error:"):
            message = message.removeprefix(word).lstrip()
    return message


class _OnceLines:
    """The command's warning format (`warnings.formatwarning`): `_one_line_warning`, each text once per command.
    Python shows a warning once per place, but every `warnings.catch_warnings` block (a probe's linear head fits in
    one) forgets what was shown: `probe --seeds 0,1` printed a task's `layers=four_last` short-backbone warning once
    per seed. A repeat is formatted as nothing (it is still warned: recorders see it)."""

    def __init__(self) -> None:
        self.shown: set[str] = set()

    def __call__(self, message: Warning | str, category: type[Warning], filename: str, lineno: int, line=None) -> str:
        text = _bare(str(message))
        if text in self.shown:
            return ""
        self.shown.add(text)
        return _one_line_warning(message, category, filename, lineno, line)


class _LogLines(logging.Handler):
    """geodino's own log warnings (`logging.getLogger("geodino...")`) as `geodino: warning: ...` lines (errors:
    `geodino: error: ...`) on the stderr of the moment, as its Python warnings are, written above any open progress
    bar: without a handler Python printed the bare message (no prefix)."""

    def emit(self, record: logging.LogRecord) -> None:
        try:
            from geodino.progress import write_above_bars

            level = "error" if record.levelno >= logging.ERROR else "warning"
            write_above_bars(f"geodino: {level}: {_bare(record.getMessage())}\n", sys.stderr)
        except Exception:
            self.handleError(record)


def log_warnings_as_lines() -> None:
    """Give the `geodino` logger its one-line handler (once per process; warnings and errors only: info stays
    quiet as before)."""
    logger = logging.getLogger("geodino")
    if not any(isinstance(h, _LogLines) for h in logger.handlers):
        handler = _LogLines(level=logging.WARNING)
        logger.addHandler(handler)
