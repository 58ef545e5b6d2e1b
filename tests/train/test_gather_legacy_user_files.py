"""The old-format gather rule (`.NAME.full-HOST-PID.pt`, swept by `sweep_temps` of `NAME.full.pt`) applied to every
output named `X.full.pt`: writing an export `model.full.pt` deleted a user's hidden `.model.full-backup-2.pt` once a
day old, and the resume sweep of a folder did the same. It now applies to sharded checkpoints only: NAME a `.ckpt`
(geodino's and Lightning's names, rotated away or not) or a folder beside the target."""

from __future__ import annotations

import socket
from pathlib import Path

from geodino.io_temps import STALE_AFTER_S, sweep_temps
from geodino.models.checkpoints.files import sweep_gathers
from tests.helpers import stale_file
from tests.train.conftest import dead_pid, legacy_gather_copy


def test_an_export_named_full_pt_leaves_user_files(tmp_path: Path) -> None:
    mine = stale_file(tmp_path / ".model.full-backup-2.pt")
    assert sweep_temps(tmp_path / "model.full.pt") == []
    assert sweep_gathers(tmp_path) == []
    assert mine.is_file()


def test_a_sharded_folder_without_ckpt_suffix_still_sweeps_its_copies(tmp_path: Path) -> None:
    (tmp_path / "model").mkdir()  # a sharded checkpoint folder beside its gather target
    dead = legacy_gather_copy(tmp_path, "model", socket.gethostname(), dead_pid())
    assert sweep_temps(tmp_path / "model.full.pt") == [dead]


def test_rotated_away_ckpt_copies_still_go(tmp_path: Path) -> None:
    stale = legacy_gather_copy(tmp_path, "step_00000020.ckpt", "node-7.example", 5, age=STALE_AFTER_S + 60)
    assert sweep_gathers(tmp_path) == [stale]
