"""Gathering a sharded checkpoint folder NAME (resume under another strategy, export, init_from) writes a copy as
large as the model and optimizer beside it, deleted when the gather ends. It was named `.NAME.full-HOST-PID.pt` by
hand, which only a special sweep of the resume folder knew: what a killed export or init_from gather left stayed for
good. It is now the project-wide temporary (`temp_name` of `NAME.full.pt`, host-safe through `writer_tag`), swept
with `sweep_temps` by every gather of that folder and, on resume, for every folder in checkpoints/: a dead writer's
goes, a live one's (or another host's recent one: maybe a gather in progress there) stays."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from geodino.io_temps import temp_name, writer_tag
from geodino.models.checkpoints.files import load_file
from geodino.train.pretrain_fit import fit


def _dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def _leftovers(folder: Path) -> dict[str, Path]:
    """A killed gather's copy of `folder` (a dead pid here), a live one's, another host's recent and 2-day-old."""
    base = f".{folder.name.split('.')[0]}.tmp-"
    rest = "".join(Path(folder.name).suffixes) + ".full.pt"
    out = {
        "dead": folder.parent / f"{base}{writer_tag()}-{_dead_pid()}{rest}",
        "live": folder.parent / f"{base}{writer_tag()}-{os.getppid()}{rest}",  # a live process here
        "other_new": folder.parent / f"{base}node-8_0123abcd-123{rest}",
        "other_old": folder.parent / f"{base}node-7_0123abcd-123{rest}",
    }
    for p in out.values():
        p.write_bytes(b"0" * 2000)
    two_days_ago = time.time() - 2 * 24 * 3600
    os.utime(out["other_old"], (two_days_ago, two_days_ago))
    return out


def _sharded_folder(path: Path, step: int = 1) -> Path:
    """A real (one-process) DCP folder plus rank 0's meta.pt, as Lightning's FSDP2 writes it."""
    import warnings

    import torch.distributed.checkpoint as dcp

    with warnings.catch_warnings():  # torch says it saves in one process even when told so (no_dist=True)
        warnings.filterwarnings("ignore", "torch.distributed is disabled, unavailable or uninitialized", UserWarning)
        dcp.save({"state_dict": {"w": torch.arange(4.0)}}, checkpoint_id=str(path), no_dist=True)
    torch.save({"global_step": step}, path / "meta.pt")
    return path


def _swept(left: dict[str, Path]) -> None:
    assert not left["dead"].exists() and not left["other_old"].exists()
    assert left["live"].exists() and left["other_new"].exists()


def test_the_gather_goes_through_the_project_temporary(tmp_path, monkeypatch) -> None:
    """The copy is `temp_name(NAME.full.pt)` (writer tag and pid: two hosts sharing the folder never collide), and
    it is gone after the gather."""
    folder = _sharded_folder(tmp_path / "step_00000003.ckpt", step=3)
    seen: list[str] = []
    real = torch.load

    def spy(f, *a, **k):
        if isinstance(f, str | Path):
            seen.append(str(f))
        return real(f, *a, **k)

    monkeypatch.setattr(torch, "load", spy)
    full = load_file(folder)
    assert full["global_step"] == 3 and torch.equal(full["state_dict"]["w"], torch.arange(4.0))
    tmp = temp_name(folder.parent / f"{folder.name}.full.pt")
    assert seen[0] == str(tmp) and tmp.name == f".step_00000003.tmp-{writer_tag()}-{os.getpid()}.ckpt.full.pt"
    assert writer_tag() in tmp.name and tmp.parent == tmp_path and not tmp.exists()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["step_00000003.ckpt"]


@pytest.mark.parametrize("name", ["step_00000001.ckpt", "teacher_shards"])
def test_a_gather_sweeps_what_killed_gathers_of_it_left(tmp_path, capsys, name) -> None:
    """Export and init_from read a sharded folder through `load_file`: its gather sweeps first."""
    folder = _sharded_folder(tmp_path / name)
    left = _leftovers(folder)
    other_folder = tmp_path / "step_00000009.ckpt"  # another folder's leftovers are its gathers' business
    other = _leftovers(other_folder)
    assert load_file(folder)["global_step"] == 1
    _swept(left)
    assert all(p.exists() for p in other.values())
    err = capsys.readouterr().err
    assert left["dead"].name in err and left["other_old"].name in err and "2.0 kB" in err


def test_export_of_a_sharded_folder_sweeps_a_killed_gather(tmp_path, monkeypatch) -> None:
    """`geodino export` of a sharded folder (the checkpoint read stubbed past the gather) sweeps the leftovers."""
    from geodino.errors import CheckpointError
    from geodino.train import checkpointing as ck

    folder = _sharded_folder(tmp_path / "checkpoints" / "step_00000002.ckpt", step=2)
    left = _leftovers(folder)
    with pytest.raises(CheckpointError, match="not written by geodino pretrain"):
        ck.export(folder, tmp_path / "export" / "teacher.pth")
    _swept(left)


def test_resume_sweeps_what_killed_gathers_left(tmp_path, capsys) -> None:
    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    resume = ckpts / "step_00000002.ckpt"
    resume.write_bytes(b"x")
    left = _leftovers(ckpts / "step_00000001.ckpt")  # a folder since rotated away: swept all the same
    calls = []
    trainer = SimpleNamespace(fit=lambda *a, **k: calls.append(k), interrupted=False)
    fit(trainer, object(), resume)
    assert calls == [{"ckpt_path": str(resume)}]
    _swept(left)
    assert resume.exists()
    err = capsys.readouterr().err
    assert left["dead"].name in err and left["other_old"].name in err and "2.0 kB" in err


def test_the_start_of_a_run_keeps_a_live_gather(tmp_path) -> None:
    """The start's clear-up of half-written checkpoints (the run holds its folder: any `.*.tmp-*` there was a
    killed writer's) spares gathers' copies: an export or init_from of one of its folders may run beside it."""
    from geodino.train.pretrain_folder import clear_partial_checkpoints

    ckpts = tmp_path / "checkpoints"
    ckpts.mkdir()
    half = ckpts / f".step_00000002.tmp-{writer_tag()}-{_dead_pid()}.ckpt"
    half.mkdir()  # a sharded checkpoint being written: a folder
    left = _leftovers(ckpts / "step_00000001.ckpt")
    clear_partial_checkpoints(ckpts)
    assert not half.exists() and all(p.exists() for p in left.values())
