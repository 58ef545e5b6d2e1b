"""Resuming a sharded checkpoint folder under another strategy gathers it through a hidden
`.step_X.ckpt.full-HOST-PID.pt` in checkpoints/ (as large as the model and optimizer), deleted when the gather ends.
A killed gather left it there for good: no start-up clean-up matched the name. The resume now sweeps those of dead
writers (a live pid's, or another host's recent one, may be a gather in progress and stays)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from types import SimpleNamespace

from geodino.train.pretrain_fit import fit


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def test_resume_sweeps_what_killed_gathers_left(tmp_path, capsys) -> None:
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    resume = ckpts / "step_00000002.ckpt"
    resume.write_bytes(b"x")
    host = socket.gethostname()
    dead = ckpts / f".step_00000001.ckpt.full-{host}-{_dead_pid()}.pt"
    live = ckpts / f".step_00000001.ckpt.full-{host}-{os.getpid()}.pt"
    old_other = ckpts / ".step_00000001.ckpt.full-node-7.cluster-123.pt"
    new_other = ckpts / ".step_00000001.ckpt.full-node-8-123.pt"
    for p in (dead, live, old_other, new_other):
        p.write_bytes(b"0" * 2000)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(old_other, (two_days_ago, two_days_ago))
    calls = []
    trainer = SimpleNamespace(fit=lambda *a, **k: calls.append(k), interrupted=False)
    fit(trainer, object(), resume)
    assert calls == [{"ckpt_path": str(resume)}]
    assert not dead.exists() and not old_other.exists()
    assert live.exists() and new_other.exists() and resume.exists()
    err = capsys.readouterr().err
    assert dead.name in err and old_other.name in err and "2.0 kB" in err
