"""The resume sweep of checkpoints/ (`sweep_gathers`, run by `pretrain_fit.fit` on resume) found gather targets only
from new-format temporaries (`.STEM.tmp-TAG-PID.SUFFIX.full.pt`), so copies in the format geodino wrote before
(`.NAME.full-HOST-PID.pt`, HOST the raw host name) stayed until that same NAME was gathered again, which never happens
for a checkpoint rotated away. It now also finds the targets of old names and hands `NAME.full.pt` to `sweep_temps`,
which removes them by the legacy rule (a dead pid on this host, another host's untouched for a day)."""

from __future__ import annotations

import os
import socket
from pathlib import Path
from types import SimpleNamespace

from geodino.io_temps import STALE_AFTER_S
from geodino.models.checkpoints.files import sweep_gathers
from geodino.train.pretrain_fit import fit
from tests.train.conftest import dead_pid, legacy_gather_copy


def _leftovers(ckpts: Path) -> tuple[list[Path], list[Path]]:
    """(copies a sweep must remove, copies it must keep) for two rotated-away checkpoints."""
    host = socket.gethostname()
    gone = [
        legacy_gather_copy(ckpts, "epoch=0-step=10.ckpt", host, dead_pid()),
        legacy_gather_copy(ckpts, "step_00000020.ckpt", host, dead_pid()),
        legacy_gather_copy(ckpts, "step_00000020.ckpt", "node-7.cluster.example", 123, age=STALE_AFTER_S + 60),
    ]
    kept = [
        legacy_gather_copy(ckpts, "epoch=0-step=10.ckpt", host, os.getppid()),  # a live process here: maybe its gather
        legacy_gather_copy(ckpts, "step_00000020.ckpt", "node-8.cluster.example", 124),  # another host's, recent
    ]
    return gone, kept


def test_resume_removes_old_format_gathers_of_rotated_checkpoints(tmp_path: Path, capsys) -> None:
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    resume = ckpts / "step_00000030.ckpt"
    resume.write_bytes(b"ckpt")
    gone, kept = _leftovers(ckpts)
    calls = []
    trainer = SimpleNamespace(fit=lambda *a, **k: calls.append(k), interrupted=False)
    fit(trainer, object(), resume)
    assert calls == [{"ckpt_path": str(resume)}]
    assert [p.name for p in gone if p.exists()] == []
    assert all(p.is_file() for p in kept) and resume.is_file()
    err = capsys.readouterr().err
    assert all(p.name in err for p in gone)


def test_sweep_gathers_returns_old_and_new_leftovers(tmp_path: Path) -> None:
    """Old names beside a new-format one of a dead writer: all three gone ones are returned, nothing else."""
    from geodino.io_temps import writer_tag

    gone, kept = _leftovers(tmp_path)
    new = tmp_path / f".step_00000005.tmp-{writer_tag()}-{dead_pid()}.ckpt.full.pt"
    new.write_bytes(b"y")
    other = tmp_path / f".notes.full-{socket.gethostname()}-{dead_pid()}.txt"  # not a gather copy
    other.write_bytes(b"z")
    removed = sweep_gathers(tmp_path)
    assert sorted(removed) == sorted([*gone, new])
    assert all(p.is_file() for p in kept) and other.is_file()
