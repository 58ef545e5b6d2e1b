"""geodino's progress bars: one rule for how they show (`progress_bar`), and text bars in a Jupyter kernel without
ipywidgets, without tqdm's warning.

Every geodino bar is a `tqdm.auto` bar made by `progress_bar` (Lightning's, in pretraining, takes `line_options`).
Its mode, `progress_mode`:
- 'bar': tqdm's bar, redrawn in place with carriage returns: on a terminal, and in a Jupyter kernel;
- 'lines': when the stream is neither (a batch job's log file, a pipe, CI): a redrawn bar there is one enormous
  line of `\\r` updates, so the bar is written as whole lines instead, e.g.
  `embed: 120/640 tiles (18.8 %), 3.20tile/s, elapsed 00:37, eta 02:43`, at most one every 30 s
  (`GEODINO_PROGRESS_INTERVAL` seconds) while it runs, plus its last state when it ends (a bar tqdm clears at its
  end, `leave=False`, writes none: a bar shorter than the interval writes nothing). tqdm still counts and
  formats (its `bar_format`); `LineWriter`, the bar's stream, turns each redraw into a line or drops it;
- 'off': no bar.
`GEODINO_PROGRESS=bar|lines|off` forces a mode (unset or `auto`: by the stream, as above); `--no-progress` and the
configs' `progress`/`progress_bar` keys still turn a command's bars off.

geodino's bars use `tqdm.auto`, which picks widget bars in a notebook. Where ipywidgets is not installed it falls
back to text bars, but first warns `TqdmWarning: IProgress not found. Please update jupyter and ipywidgets` (once
per kernel, when tqdm.auto is first imported: by a geodino bar, or by a library a probe imports, e.g. torchmetrics
-> transformers). `quiet_notebook_fallback` (run by `import geodino`) imports tqdm.auto there with that one warning
ignored, so every later import gets the same text bars, unwarned. Outside a kernel, or with ipywidgets (widget
bars), it does nothing: importing geodino imports no tqdm.
"""

from __future__ import annotations

import os
import sys
import time
import warnings
from contextlib import suppress
from typing import IO, Any

PROGRESS_ENV = "GEODINO_PROGRESS"  # bar | lines | off forces a mode; unset or auto: by the stream
INTERVAL_ENV = "GEODINO_PROGRESS_INTERVAL"  # seconds between two lines of a bar in 'lines' mode (default 30)
MODES = ("bar", "lines", "off")
# a bar's line in 'lines' mode: tqdm's own counts (its format_dict) without the bar. Its desc ends in ": " as tqdm's
# set_description leaves it (`line_options` adds it to the first); {postfix} is ", k=v, ..." or nothing
LINE_FORMAT = (
    "{desc}{n_fmt}/{total_fmt} {unit} ({percentage:.1f} %), {rate_fmt}, elapsed {elapsed}, eta {remaining}{postfix}"
)
COUNT_FORMAT = "{desc}{n_fmt} {unit}, {rate_fmt}, elapsed {elapsed}{postfix}"  # a bar of no known total


def in_kernel_without_widgets() -> bool:
    """Whether this Python is a Jupyter kernel (ipykernel's shell loaded, as tqdm.autonotebook tests) that cannot
    import ipywidgets."""
    if "ipykernel.zmqshell" not in sys.modules:
        return False
    from importlib.util import find_spec

    try:
        return find_spec("ipywidgets") is None
    except (ImportError, ValueError):  # a broken or stubbed entry in sys.modules: not importable
        return True


def quiet_notebook_fallback() -> None:
    """Import tqdm.auto with its 'IProgress not found' warning ignored, in a kernel without ipywidgets and when
    nothing imported it before (then the warning, if any, was already shown)."""
    if "tqdm.autonotebook" in sys.modules or not in_kernel_without_widgets():
        return
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="IProgress not found")
        import tqdm.auto  # noqa: F401


def _in_kernel() -> bool:
    """Whether this Python is a Jupyter kernel (ipykernel's shell loaded, as tqdm.autonotebook tests)."""
    return "ipykernel.zmqshell" in sys.modules


def _isatty(stream: Any) -> bool:
    with suppress(Exception):  # no isatty, a closed or detached stream: not a terminal
        return bool(stream.isatty())
    return False


def progress_mode(stream: IO[str] | None = None) -> str:
    """How a bar on `stream` (default: the stderr of the moment) shows: 'bar', 'lines' or 'off' (module docstring).
    `GEODINO_PROGRESS` forces one; a value it cannot be is a ConfigError naming it."""
    raw = os.environ.get(PROGRESS_ENV, "").strip().lower()
    if raw in MODES:
        return raw
    if raw not in ("", "auto"):
        from geodino.errors import ConfigError

        raise ConfigError(
            f"{PROGRESS_ENV}={raw!r} is not a progress mode; use bar, lines, off or auto (unset: bar on a terminal "
            "or in a notebook, else lines)"
        )
    stream = sys.stderr if stream is None else stream
    if stream is None:  # pythonw: no stderr to draw on
        return "off"
    if _in_kernel() or _isatty(stream):
        return "bar"
    line_interval()  # a bad GEODINO_PROGRESS_INTERVAL fails where the mode is read (before a run, not in it)
    return "lines"


def line_interval() -> float:
    """Seconds between two lines of a bar in 'lines' mode: `GEODINO_PROGRESS_INTERVAL` (default 30)."""
    raw = os.environ.get(INTERVAL_ENV, "").strip()
    if not raw:
        return 30.0
    try:
        seconds = float(raw)
    except ValueError:
        seconds = -1.0
    if not seconds >= 0:  # also NaN
        from geodino.errors import ConfigError

        raise ConfigError(f"{INTERVAL_ENV}={raw!r} must be a number of seconds >= 0 (unset: 30)")
    return seconds


class LineWriter:
    """The stream of one bar in 'lines' mode: each of tqdm's redraws (`\\r` + the bar's text) becomes a whole line
    on `stream` when `interval` seconds have passed since the bar began or since its last line, or is dropped; the
    bar's end (the line feed tqdm writes when a bar that stays closes) writes its last state, if not written yet. A
    blank redraw (tqdm clearing the bar: a bar that does not stay, at its end) drops the state not yet written."""

    def __init__(self, stream: IO[str], interval: float) -> None:
        self.stream, self.interval = stream, interval
        self._at = time.monotonic()  # when the last line was written (the bar's start before its first one)
        self._pending = self._shown = ""

    def write(self, text: str) -> int:
        # tqdm's cursor-up (nested bars), carriage returns and padding (its rate is right-aligned) away
        status = " ".join(text.replace("\x1b[A", "").split())
        if status:
            self._pending = status
            if time.monotonic() - self._at >= self.interval:
                self._emit()
        elif text == "\n":
            self._emit()
        elif "\r" in text:
            self._pending = ""
        return len(text)

    def _emit(self) -> None:
        if self._pending and self._pending != self._shown:
            self.stream.write(self._pending + "\n")
            self.flush()
            self._shown = self._pending
        self._pending, self._at = "", time.monotonic()

    def flush(self) -> None:
        with suppress(Exception):  # a closed stream: tqdm's own writes are already guarded the same way
            self.stream.flush()

    def isatty(self) -> bool:
        return False

    @property
    def encoding(self) -> str | None:
        return getattr(self.stream, "encoding", None)


# units said as they are after a count: tqdm's own "it", abbreviations, and nouns already plural ("cells")
_UNCOUNTED = ("it", "img", "B")


def unit_label(unit: str, total: int | None) -> str:
    """`unit` as a line says it after "n/total": plural unless the total is 1 ("4/4 tiles", "1/1 tile"; a bar of no
    known total, counting up, says the plural), as it is for tqdm's "it", abbreviations and plural nouns."""
    if not unit or unit in _UNCOUNTED or unit.endswith("s") or total == 1:
        return unit
    return unit + "es" if unit.endswith(("ch", "sh", "x")) else unit + "s"


def line_options(
    stream: IO[str], desc: str | None = None, *, total: bool = True, unit: str | None = None, count: int | None = None
) -> dict[str, Any]:
    """tqdm's keyword arguments of a bar described `desc` in 'lines' mode on `stream` (`total` False: a bar that
    counts without a known total, so no percentage or eta); `unit` (with the bar's total `count`) is written after
    the counts in its number (`unit_label`); without it, tqdm's unit is written as tqdm has it."""
    interval = line_interval()
    form = LINE_FORMAT if total else COUNT_FORMAT
    if unit:
        said = unit_label(unit, count if total else None).replace("{", "{{").replace("}", "}}")
        form = form.replace(" {unit}", f" {said}", 1)  # the count's unit only; the rate keeps tqdm's "tile/s"
    return {
        "file": LineWriter(stream, interval),
        "desc": f"{desc}: " if desc and not desc.endswith(": ") else desc,
        "bar_format": form,
        "position": 0,  # no cursor moves for nested bars: each bar writes its own lines
        "mininterval": min(1.0, interval),  # tqdm formats at most once a second; the writer picks the lines
        "dynamic_ncols": False,
        "ncols": None,
    }


def progress_bar(iterable: Any = None, **kwargs: Any) -> Any:
    """`tqdm.auto.tqdm(iterable, **kwargs)` in the mode of its stream (`file`, default stderr): the same bar in
    'bar' mode, a disabled one in 'off' mode, whole lines every `line_interval()` seconds in 'lines' mode."""
    from tqdm.auto import tqdm

    stream = kwargs.get("file") or sys.stderr
    mode = progress_mode(stream)
    if mode == "off":
        kwargs["disable"] = True
    elif mode == "lines" and not kwargs.get("disable"):
        count = kwargs.get("total")
        count = len(iterable) if count is None and hasattr(iterable, "__len__") else count
        unit = kwargs.get("unit")
        kwargs.update(line_options(stream, kwargs.get("desc"), total=count is not None, unit=unit, count=count))
    return tqdm(**kwargs) if iterable is None else tqdm(iterable, **kwargs)


def _holds_a_line(bar: Any) -> bool:
    """Whether `bar` leaves its line open between redraws (a bar in 'lines' mode writes whole lines)."""
    fp = getattr(bar, "fp", None)
    return not isinstance(getattr(fp, "_wrapped", fp), LineWriter)


def open_bars() -> list:
    """The tqdm bars open in this process (none when tqdm was never imported: it is not imported here); the CLI
    closes them before a stopped run's last line (a bar in 'lines' mode then writes its last state)."""
    tqdm = sys.modules.get("tqdm")
    return list(getattr(getattr(tqdm, "tqdm", None), "_instances", ()) or ())


def _bars_on_a_line() -> list:
    """The open bars that hold their line open between redraws (not those in 'lines' mode): a message printed
    while one is open must start a new line, or it lands on the bar's line."""
    return [bar for bar in open_bars() if _holds_a_line(bar)]


def line_start() -> str:
    """A line break when a progress bar holds its line open, else nothing."""
    return "\n" if _bars_on_a_line() else ""


def clear_bars() -> None:
    """Blank the open bars' lines (cursor back at the line's start): the text written next takes the bar's line
    instead of landing after it; each bar redraws itself below at its next update."""
    for bar in _bars_on_a_line():
        with suppress(Exception):  # a bar of a closed stream: nothing to clear
            bar.clear()


def write_above_bars(text: str, file: IO[str] | None = None) -> None:
    """Write whole lines to `file` (the stderr of the moment) above the open bars, as tqdm.write does: they are
    cleared first and redrawn under the text, so that a message neither lands on a bar's line nor leaves a blank
    line after one (a second message before the bar's next update)."""
    file = file if file is not None else sys.stderr
    bars = _bars_on_a_line()
    if not bars:
        file.write(text)
    else:
        with type(bars[0]).external_write_mode(file=file):
            file.write(text)
    file.flush()
