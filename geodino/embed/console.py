"""The lines a `geodino embed` run says on stderr besides its warnings (`Console`), and the line of a rank of
`--world-size N` that finished its blocks while another rank still works (`rank_done`)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

__all__ = ["Console", "rank_done"]


class Console:
    """The run's lines on stderr (input scaling, inference path...). With the progress bar they are printed at once
    (someone is watching); without it (`--no-progress`: logs, scripts) they are held and printed just before the
    run's last line, so a successful run says what it used and wrote and a failed one prints only its error.
    `quiet`: a spawned worker, whose parent says it all, or a Python call without the bar (`says`)."""

    def __init__(self, *, now: bool, quiet: bool = False) -> None:
        self.now, self.quiet = now, quiet
        self.held: list[str] = []

    def say(self, text: str) -> None:
        if self.quiet:
            return
        if self.now:
            print(text, file=sys.stderr)
        else:
            self.held.append(text)

    def flush(self) -> None:
        """Print the held lines (call before the last line)."""
        for text in self.held:
            print(text, file=sys.stderr)
        self.held.clear()


def rank_done(console: Console, cfg: Any, out_path: Path) -> Path:
    """A process whose blocks are done while another rank works or writes the output: its held lines (the input
    scaling, the inference path), and for a rank of `--world-size N` a line saying who writes `out_path`. With
    `--no-progress` rank 0 held its lines for a 'wrote' line another rank prints, and so printed nothing."""
    if cfg.world_size > 1:
        console.say(
            f"geodino: rank {cfg.rank} of --world-size {cfg.world_size}: its blocks are done; the last rank to "
            f"finish writes {out_path}"
        )
    console.flush()
    return out_path
