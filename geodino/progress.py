"""Text progress bars in a Jupyter kernel without ipywidgets, without tqdm's warning.

geodino's bars use `tqdm.auto`, which picks widget bars in a notebook. Where ipywidgets is not installed it falls
back to text bars, but first warns `TqdmWarning: IProgress not found. Please update jupyter and ipywidgets` (once
per kernel, when tqdm.auto is first imported: by a geodino bar, or by a library a probe imports, e.g. torchmetrics
-> transformers). `quiet_notebook_fallback` (run by `import geodino`) imports tqdm.auto there with that one warning
ignored, so every later import gets the same text bars, unwarned. Outside a kernel, or with ipywidgets (widget
bars), it does nothing: importing geodino imports no tqdm.
"""

from __future__ import annotations

import sys
import warnings
from contextlib import suppress
from typing import IO


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


def open_bars() -> list:
    """The tqdm bars open in this process (none when tqdm was never imported: it is not imported here): a message
    printed while one is open must start a new line, or it lands on the bar's line."""
    tqdm = sys.modules.get("tqdm")
    return list(getattr(getattr(tqdm, "tqdm", None), "_instances", ()) or ())


def line_start() -> str:
    """A line break when a progress bar is open (its line not ended), else nothing."""
    return "\n" if open_bars() else ""


def clear_bars() -> None:
    """Blank the open bars' lines (cursor back at the line's start): the text written next takes the bar's line
    instead of landing after it; each bar redraws itself below at its next update."""
    for bar in open_bars():
        with suppress(Exception):  # a bar of a closed stream: nothing to clear
            bar.clear()


def write_above_bars(text: str, file: IO[str] | None = None) -> None:
    """Write whole lines to `file` (the stderr of the moment) above the open bars, as tqdm.write does: they are
    cleared first and redrawn under the text, so that a message neither lands on a bar's line nor leaves a blank
    line after one (a second message before the bar's next update)."""
    file = file if file is not None else sys.stderr
    bars = open_bars()
    if not bars:
        file.write(text)
    else:
        with type(bars[0]).external_write_mode(file=file):
            file.write(text)
    file.flush()
