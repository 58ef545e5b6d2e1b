"""`geodino.train.checkpointing.export` called from Python read the whole checkpoint before it took the output's
lock and before it refused existing outputs (the CLI took the lock first since ed1b039). The lock is now taken and
existing outputs refused first, and a missing folder of `out` is created before the lock (it was an unlocked no-op
there)."""

from __future__ import annotations

import fcntl
import warnings
from pathlib import Path

import pytest

from geodino.errors import CheckpointError, InputError
from geodino.run_lock import output_lock_path
from geodino.train import checkpointing
from tests.test_output_locks import _checkpoint, held_by_another_run


def _never_read(monkeypatch) -> None:
    """Make any read of a checkpoint fail the test."""

    def refuse(*a, **kw):
        raise AssertionError(f"the checkpoint was read: {a}")

    monkeypatch.setattr(checkpointing, "load_file", refuse)
    monkeypatch.setattr("torch.load", refuse)


def _export(ckpt: Path, out: Path, **kw) -> list[Path]:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # the tiny checkpoint records no normalisation
        return checkpointing.export(ckpt, out, **kw)


def _is_locked(lock: Path) -> bool:
    """Whether some open file (this process's or another's) holds the flock on `lock`."""
    if not lock.exists():
        return False
    with open(lock, "a+") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return True
        fcntl.flock(fh, fcntl.LOCK_UN)
        return False


@pytest.mark.parametrize("existing", ["m.pth", "m.heads.pth", "m.stac.json"])
def test_an_existing_output_is_refused_before_the_checkpoint_is_read(tmp_path, monkeypatch, existing):
    ckpt = _checkpoint(tmp_path / "b.ckpt")
    out = tmp_path / "ex" / "m.pth"
    out.parent.mkdir()
    (out.parent / existing).write_text("the user's file")
    _never_read(monkeypatch)
    with pytest.raises(InputError) as err:
        checkpointing.export(ckpt, out)
    msg = str(err.value)
    assert "\n" not in msg and msg.startswith(f"output {out.parent / existing} already exists; pass --overwrite")
    assert "overwrite=True" in msg
    assert (out.parent / existing).read_text() == "the user's file"
    assert not output_lock_path(out.with_suffix("")).exists()  # the lock was given up and its file removed


def test_an_export_another_run_writes_is_refused_before_the_checkpoint_is_read(tmp_path, monkeypatch):
    ckpt = _checkpoint(tmp_path / "b.ckpt")
    out = tmp_path / "ex" / "m.pth"
    out.parent.mkdir()
    _never_read(monkeypatch)
    with held_by_another_run(out.with_suffix("")), pytest.raises(InputError) as err:
        checkpointing.export(ckpt, out, overwrite=True)
    assert str(err.value).startswith(f"export {out.with_suffix('')} is being written by another run (pid 4242")
    assert list(out.parent.iterdir()) == []


def test_the_lock_is_held_while_the_checkpoint_is_read_and_a_missing_folder_is_created(tmp_path, monkeypatch):
    ckpt = _checkpoint(tmp_path / "b.ckpt")
    out = tmp_path / "new" / "sub" / "m.pth"  # neither folder exists: the early lock must not be a no-op
    lock = output_lock_path(out.with_suffix(""))
    seen: list[bool] = []
    real = checkpointing.load_file

    def reading(path, *a, **kw):
        seen.append(_is_locked(lock))
        return real(path, *a, **kw)

    monkeypatch.setattr(checkpointing, "load_file", reading)
    paths = _export(ckpt, out)
    assert seen == [True]  # read once, under the output's lock
    assert [p.name for p in paths] == ["m.pth", "m.safetensors", "m.heads.pth"]
    assert sorted(p.name for p in out.parent.iterdir()) == ["m.heads.pth", "m.pth", "m.safetensors", "m.stac.json"]
    # a second export onto it is refused at once; overwrite=True replaces it (reading the checkpoint again)
    with pytest.raises(InputError, match="already exists; pass --overwrite"):
        _export(ckpt, out)
    assert seen == [True]
    _export(ckpt, out, overwrite=True)
    assert seen == [True, True]


def test_a_missing_checkpoint_creates_no_output_folder(tmp_path):
    out = tmp_path / "new" / "m.pth"
    with pytest.raises(CheckpointError, match=r"missing.ckpt not found"):
        checkpointing.export(tmp_path / "missing.ckpt", out)
    assert not (tmp_path / "new").exists()
