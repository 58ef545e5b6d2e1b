"""The record of a feature raster's input file in its partial output's work folder, so that `--resume` sees an edit
that the input's identity cannot.

The store's metadata identifies the input by its size and the sha256 of its first 64 KiB (`input_identity`, the
output's GEODINO_INPUT_IDENTITY), which a resume compares (`workdir._check_same_input`). An edit past the first
64 KiB of a file whose size it keeps (an uncompressed or tiled GeoTIFF rewritten in place) gives the same identity,
and the resumed raster took its first rows from the old pixels and the rest from the new. So the work folder keeps
the file's record too (`input_file.json`: `file_stamps.file_record`, its state with the modification time, change
time and inode), taken when the folder is made, before any pixel is read, and a resume checks it by the rule of
`file_stamps.recheck`: a file whose size, times and inode are as recorded is the same with no read; one whose
change time or inode alone moved (a `chmod`, the input and its output folder copied with `cp -a`) has its head
hashed; another modification time is a change, refused, also for a file only touched (restore its time with
`touch -d` to resume). Only the work folder holds this record: the finished output stays byte-identical whatever
the file's times. A work folder of an earlier version, without it, resumes checked by the identity as before (and
the record is written then, for the next resume).
"""

from __future__ import annotations

import contextlib
import json
import re
import time
from pathlib import Path
from typing import Any

__all__ = ["RECORD", "input_change", "keep_input_record"]

RECORD = "input_file.json"


def keep_input_record(work: Path, path: str | Path) -> None:
    """Write the record of the input at `path` as it is now into the work folder `work` (atomically)."""
    from geodino.embed.file_stamps import file_record
    from geodino.io import atomic_path

    taken = time.time_ns()
    record = {"taken_ns": taken, "file": file_record(Path(path).expanduser())}
    with atomic_path(work / RECORD, durable=False) as tmp:
        tmp.write_text(json.dumps(record))


def input_change(work: Path, path: str | Path | None, recorded: Any, identity: str) -> tuple[str, str] | None:
    """(then, now) in words when the input at `path` is not the file the partial output in `work` was started
    from: its identity differs (`recorded` in the store's metadata, `identity` now; a store of an earlier version
    records none), or its record in the work folder says so (`file_stamps.recheck`). None when it is that file,
    also when the folder has no record that reads (one is written now: see the module's text)."""
    from geodino.embed.file_stamps import file_state, recheck, stamp_reads

    if isinstance(recorded, str) and recorded != identity:
        return _short_hex(recorded), _short_hex(identity)
    if path is None:
        return None
    record = _read(work)
    file = Path(path).expanduser()
    if record is None or not stamp_reads(record["file"][1:]):
        with contextlib.suppress(OSError):  # for the next resume only: a folder that refuses it resumes as before
            keep_input_record(work, file)
        return None
    state = record["file"][0]
    if recheck(file, state, record["file"][1:], record["taken_ns"])[0]:
        return None
    return _words(state), _words(file_state(file))


def _short_hex(identity: str) -> str:
    """An identity for a message: its sha256 cut to 16 hex digits (enough to tell two contents apart)."""
    return re.sub(r"\b([0-9a-f]{16})[0-9a-f]{48}\b", r"\1...", identity)


def _read(work: Path) -> dict[str, Any] | None:
    """The record when it reads as `keep_input_record` writes it, else None."""
    try:
        record = json.loads((work / RECORD).read_text())
        ok = isinstance(record["taken_ns"], int) and isinstance(record["file"], list) and len(record["file"]) == 3
        return record if ok and (record["file"][0] is None or isinstance(record["file"][0], str)) else None
    except (OSError, ValueError, KeyError, TypeError):
        return None


def _words(state: str | None) -> str:
    """A file state for a message: its size and modification time (UTC, to the ns: what `touch -d` takes back)."""
    parts = (state or "").split(" ")
    if len(parts) != 3 or not (parts[0].isdigit() and parts[1].isdigit()):
        return "no readable file"
    ns = int(parts[1])
    stamp = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime(ns // 10**9))
    return f"{int(parts[0])} bytes modified {stamp}.{ns % 10**9:09d} UTC"
