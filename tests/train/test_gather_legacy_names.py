"""Old-format gather copies `.NAME.full-HOST-PID.pt` of a sharded checkpoint whose NAME itself holds `.full-`
(`my.full-run.ckpt`): the split was at the first `.full-`, so the resume sweep (`sweep_gathers`) gave the copy to
target `my.full.pt`, whose sweep read HOST as `run.ckpt.full-<host>` (another host: kept a day, though its pid is dead
here), and the gather sweep of a folder `my` took another checkpoint's copy for its own. HOST was any text, so a
hidden `.NAME.full-my backup-1.pt` was taken for a copy too. Now NAME/HOST split as `legacy_gather_owner` says: this
host's name when one split has it, else the last `.full-`; HOST only host-name characters."""

from __future__ import annotations

import os
import socket
from pathlib import Path

from geodino.io_temps import STALE_AFTER_S, sweep_temps
from geodino.models.checkpoints.files import sweep_gathers
from tests.train.conftest import dead_pid, legacy_gather_copy

NAME = "my.full-run.ckpt"  # a sharded checkpoint folder whose name holds `.full-`


def test_resume_sweep_removes_a_dead_copy_of_a_name_with_full(tmp_path: Path) -> None:
    host = socket.gethostname()
    dead = legacy_gather_copy(tmp_path, NAME, host, dead_pid())
    live = legacy_gather_copy(tmp_path, NAME, host, os.getpid())
    recent = legacy_gather_copy(tmp_path, NAME, "node-2.example", 77)
    assert sweep_gathers(tmp_path) == [dead]
    assert not dead.exists() and live.is_file() and recent.is_file()


def test_another_targets_sweep_leaves_the_copy(tmp_path: Path) -> None:
    """The gather sweep of folder `my` (target `my.full.pt`) never takes `my.full-run.ckpt`'s copy, not even a day
    later; the sweep of the real target removes it (dead pid here) at once."""
    copy = legacy_gather_copy(tmp_path, NAME, socket.gethostname(), dead_pid(), age=STALE_AFTER_S + 60)
    assert sweep_temps(tmp_path / "my.full.pt") == []
    assert copy.is_file()
    assert sweep_temps(tmp_path / f"{NAME}.full.pt") == [copy]


def test_stale_copy_of_another_host_goes_to_its_own_target(tmp_path: Path) -> None:
    stale = legacy_gather_copy(tmp_path, NAME, "node-2.example", 77, age=STALE_AFTER_S + 60)
    assert sweep_temps(tmp_path / "my.full.pt") == []
    assert sweep_gathers(tmp_path) == [stale]


def test_names_no_host_writes_are_kept(tmp_path: Path) -> None:
    """HOST is a host name (letters, digits, dots, hyphens, underscores): a user's `.X.full-my backup-1.pt` is kept."""
    odd = [tmp_path / ".step_00000004.ckpt.full-my backup-1.pt", tmp_path / ".step_00000004.ckpt.full-v2+old-3.pt"]
    for p in odd:
        p.write_bytes(b"x")
        t = os.path.getmtime(p) - STALE_AFTER_S - 60
        os.utime(p, (t, t))
    assert sweep_temps(tmp_path / "step_00000004.ckpt.full.pt") == []
    assert sweep_gathers(tmp_path) == []
    assert all(p.is_file() for p in odd)


def test_owner_split_prefers_this_host_else_the_last_full(monkeypatch) -> None:
    from geodino.io_temps import legacy_gather_owner

    monkeypatch.setattr(socket, "gethostname", lambda: "n.full-x")
    assert legacy_gather_owner(".a.full-n.full-x-5.pt") == ("a", "n.full-x", 5)
    monkeypatch.setattr(socket, "gethostname", lambda: "elsewhere")
    assert legacy_gather_owner(".a.full-n.full-x-5.pt") == ("a.full-n", "x", 5)
    assert legacy_gather_owner(".a.full-x-5.pt") == ("a", "x", 5)
    assert legacy_gather_owner(".a.full--5.pt") is None  # no host
    assert legacy_gather_owner(".a.tmp-x-5.pt") is None
