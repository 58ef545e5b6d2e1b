"""`file_stamps.recheck` when the file system stamps times by another clock than this machine's (an NFS or SMB
server's): the 'changed too recently to trust its stat' window (`io_stamps.RACY_NS`) allows for the skew."""

from __future__ import annotations

import os
from pathlib import Path

from geodino.embed.file_stamps import file_record, file_state, recheck
from geodino.io_stamps import RACY_NS, SKEW_NS, TICK_NS

OLD_NS = 1_600_000_000 * 10**9  # the files' mtime (2020), kept across the rewrite


def _rewritten_in_the_same_tick(tmp_path: Path) -> tuple[Path, str | None, list[int]]:
    """A file recorded, then rewritten in place with other bytes of the same size and mtime; the stamp returned is
    its change time and inode now, as the record would hold them had the rewrite fallen in the recorded tick."""
    f = tmp_path / "scene.tif"
    f.write_bytes(b"a" * 4096)
    os.utime(f, ns=(OLD_NS, OLD_NS))
    state = file_record(f)[0]
    f.write_bytes(b"b" * 4096)
    os.utime(f, ns=(OLD_NS, OLD_NS))
    st = os.stat(f)
    return f, state, [st.st_ctime_ns, st.st_ino]


def test_a_server_clock_behind_this_one_does_not_make_a_same_tick_rewrite_trusted(tmp_path: Path) -> None:
    """This machine's clock 10 s ahead of the server's when it recorded: the file looked 10 s old by it, past the
    2 s of the timestamps' resolution alone, so its stat was trusted and the rewrite went unseen."""
    f, state, stamp = _rewritten_in_the_same_tick(tmp_path)
    taken = stamp[0] + 10 * 10**9
    assert TICK_NS < 10 * 10**9 < SKEW_NS and RACY_NS == TICK_NS + SKEW_NS
    assert recheck(f, state, stamp, taken) == (False, [file_state(f), *stamp])  # its head read: changed


def test_past_the_window_the_stat_alone_is_trusted(tmp_path: Path) -> None:
    """The window's other side: a change older than RACY_NS by this clock is trusted with no read (here wrongly,
    which only a skew beyond SKEW_NS or a rewrite keeping the stat could bring about)."""
    f, state, stamp = _rewritten_in_the_same_tick(tmp_path)
    assert recheck(f, state, stamp, stamp[0] + RACY_NS + 1) == (True, None)


def test_a_change_in_this_clocks_future_is_checked_by_its_head(tmp_path: Path) -> None:
    """The server's clock ahead of this one: the change is younger than it looks, so its head is read."""
    f = tmp_path / "scene.tif"
    f.write_bytes(b"a" * 4096)
    state, ctime, inode = file_record(f)
    assert recheck(f, state, [ctime, inode], ctime - 60 * 10**9) == (True, [state, ctime, inode])
