"""Gather copies in the format geodino wrote before the `temp_name` gather (`.NAME.full-HOST-PID.pt`, HOST the raw
host name) were swept only by the removed `sweep_gathered`; the gather sweep of a target `NAME.full.pt`
(`sweep_temps`, run by every gather of NAME) now removes them again by the old rule: a dead pid on this host, another
host's only when untouched for `STALE_AFTER_S`; a live writer's and a recent other host's copy stay."""

from __future__ import annotations

import os
import socket

from geodino.io_temps import STALE_AFTER_S, sweep_temps
from tests.train.conftest import dead_pid, legacy_gather_copy

TARGET = "step_00000004.ckpt"  # the sharded checkpoint whose gather copies the tests leave


def test_legacy_gather_copies_of_gone_writers_are_swept(tmp_path, capsys) -> None:
    host = socket.gethostname()
    dead = legacy_gather_copy(tmp_path, TARGET, host, dead_pid())
    live = legacy_gather_copy(tmp_path, TARGET, host, os.getpid())
    recent = legacy_gather_copy(tmp_path, TARGET, "other.node.example", 12345)
    stale = legacy_gather_copy(tmp_path, TARGET, "other.node.example", 12346, age=STALE_AFTER_S + 60)
    other_step = tmp_path / f".step_00000008.ckpt.full-{host}-{dead_pid()}.pt"  # another target's: not this sweep's
    other_step.write_bytes(b"y")
    removed = sweep_temps(tmp_path / "step_00000004.ckpt.full.pt")
    assert sorted(removed) == sorted([dead, stale])
    assert not dead.exists() and not stale.exists()
    assert live.is_file() and recent.is_file() and other_step.is_file()
    assert "removed 2 temporaries of killed runs" in capsys.readouterr().err


def test_a_legacy_name_of_another_target_or_a_folder_is_kept(tmp_path) -> None:
    host = socket.gethostname()
    folder = tmp_path / f".step_00000004.ckpt.full-{host}-{dead_pid()}.pt"
    folder.mkdir()  # not a file geodino wrote
    assert sweep_temps(tmp_path / "step_00000004.ckpt") == []  # not a gather target: no legacy pattern
    assert sweep_temps(tmp_path / "step_00000004.ckpt.full.pt") == []
    assert folder.is_dir()
