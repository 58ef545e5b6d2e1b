"""Whether a file is still the one a record describes, reading as little as it can: the one rule of a resumed
feature raster (its input, `input_stamp`), a resumed `embed images` run (its parts' files, `image_changes`) and
the probes' feature cache (its rows' files, `eval.feature_files`).

A file's record (`file_record`) is its state (`file_state`: size, modification time in ns and the sha256 of its
first 64 KiB, `provenance.file_digest`) and its stamp (inode change time in ns and inode number), the stat taken
before the state, so a change between the two shows as a new change time. A check (`recheck`) stats the file
first, with no read: size, modification time, change time and inode all as recorded (and the change older than
`RACY_NS` before the record was taken, by this machine's clock: the window allows for a file server's clock behind
it, `geodino.io_stamps`) is unchanged, as git trusts its index. Another size or modification time is
a change, also with no read: a file only touched counts as changed (a redone part, a refused resume: time, never a
wrong row). The change time cannot be set back (`cp -p`, `touch -d` and extracting an archive set it to now), so a
file whose stamp alone moved has its head hashed: the same state (a `chmod`, the same bytes written again, a folder
copied elsewhere with `cp -a`) is unchanged, another is a change. What no rule short of hashing whole files sees: a
file replaced with another of the same size, modification time and first 64 KiB. A record without a stamp (written
before stamps were kept) is checked by its state, the head hashed, as it was then.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from geodino.io_stamps import RACY_NS  # changed this recently (ctime, with clock skew) may change again unseen

__all__ = ["RACY_NS", "file_record", "file_state", "recheck", "stamp_reads"]


def file_state(path: Path) -> str | None:
    """`"<size> <mtime_ns> <sha256 of the first 64 KiB>"` of the file at `path`; None when it does not read (a
    file that comes back later reads as changed)."""
    from geodino.embed.provenance import file_digest

    try:
        mtime = os.stat(path).st_mtime_ns
    except OSError:
        return None
    digest = file_digest(path)
    return None if digest is None else f"{digest[0]} {mtime} {digest[1]}"


def file_record(path: Path) -> list[Any]:
    """`[file_state, ctime_ns, inode]` of the file at `path` now (`[None, 0, 0]` when it cannot be stat'ed)."""
    try:
        st = os.stat(path)
    except OSError:
        return [None, 0, 0]
    return [file_state(path), st.st_ctime_ns, st.st_ino]


def recheck(path: Path, state: str | None, stamp: Sequence[int] | None, taken_ns: int) -> tuple[bool, list[Any] | None]:
    """(unchanged, its record now when its head was hashed, else None) of the file at `path`, recorded as `state`
    and `stamp` (`[ctime_ns, inode]`; None: a record that kept none) by a record taken at `taken_ns` (time.time_ns()
    before the files were stat'ed)."""
    try:
        st = os.stat(path)
    except OSError:
        return state is None, None
    if state is not None and state.split(" ")[:2] != [str(st.st_size), str(st.st_mtime_ns)]:
        return False, None  # another size or time: changed, nothing read
    now_stamp = [st.st_ctime_ns, st.st_ino]
    if state is not None and stamp is not None and list(stamp) == now_stamp and st.st_ctime_ns < taken_ns - RACY_NS:
        return True, None
    now = file_state(path)
    return now == state, [now, *now_stamp]


def stamp_reads(stamp: Any) -> bool:
    """Whether `stamp` is `[ctime_ns, inode]` as `file_record` writes it (two ints, not bools)."""
    return (
        isinstance(stamp, list)
        and len(stamp) == 2
        and all(isinstance(v, int) and not isinstance(v, bool) for v in stamp)
    )
