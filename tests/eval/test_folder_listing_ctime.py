"""The memo of folder listings (`folder_listing.list_folder`) keys each folder by its ctime and inode as well as
its mtime, and keeps no listing of a folder changed (by ctime) within `io_stamps.RACY_NS`: an mtime can be set
back (`touch -d`, `cp -p`, `rsync -t` or tar restoring a folder's mtime after adding a file), a ctime cannot, and
a file added so was missing from the listing, its dataset's splits and its feature-cache stamp."""

from __future__ import annotations

import os
import time

from geodino import io_stamps
from geodino.eval import folder_listing

HOUR_NS = 3600 * 10**9


def _tree(root):
    """A class folder of two files, every folder's mtime an hour ago (as for data copied with its times kept)."""
    (root / "a").mkdir(parents=True)
    for name in ("1.png", "2.png"):
        (root / "a" / name).write_bytes(b"x")
    then = time.time_ns() - HOUR_NS
    for folder in (root / "a", root):
        os.utime(folder, ns=(then, then))
    return then


def test_a_file_added_under_a_folder_whose_mtime_was_set_back_is_listed(tmp_path, monkeypatch):
    monkeypatch.setattr(io_stamps, "RACY_NS", 0)  # as for folders changed long before (their ctime too)
    monkeypatch.setattr(folder_listing, "_LISTINGS", {})
    then = _tree(tmp_path / "d")
    assert folder_listing.list_folder(tmp_path / "d") == (os.path.join("a", "1.png"), os.path.join("a", "2.png"))
    (tmp_path / "d" / "a" / "3.png").write_bytes(b"x")
    os.utime(tmp_path / "d" / "a", ns=(then, then))  # its mtime put back, as `rsync -t` or tar leaves it
    assert os.path.join("a", "3.png") in folder_listing.list_folder(tmp_path / "d")  # was missed: the old listing


def test_a_folder_changed_within_the_racy_window_by_ctime_is_not_kept(tmp_path, monkeypatch):
    """Its mtime an hour old but its ctime now (the mtime was set back just now): a change in the same ctime tick
    would not show, so the listing is not kept; kept once its ctime is older than the window."""
    monkeypatch.setattr(folder_listing, "_LISTINGS", {})
    _tree(tmp_path / "d")
    folder_listing.list_folder(tmp_path / "d")
    assert folder_listing._LISTINGS == {}  # was kept: only the mtime was asked
    monkeypatch.setattr(io_stamps, "RACY_NS", 0)
    folder_listing.list_folder(tmp_path / "d")
    assert list(folder_listing._LISTINGS) == [os.path.realpath(tmp_path / "d")]
