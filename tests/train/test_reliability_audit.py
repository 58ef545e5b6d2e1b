"""Reliability of training runs under kills, preemption, bad resumes and diverging losses (an adversarial audit):
each test reproduces a defect that was found and fails on the code before its fix."""

from __future__ import annotations

from pathlib import Path

from geodino.config import load_config
from geodino.train.pretrain import PretrainConfig
from tests.train.conftest import write_config


def _cfg(tmp_path: Path, data: Path, out: str = "run", *overrides: str) -> PretrainConfig:
    return load_config(PretrainConfig, write_config(tmp_path / f"{out}.yaml", tmp_path / out, data), list(overrides))


def test_a_sharded_checkpoint_temporary_left_by_a_kill_is_swept(tmp_path, tiny_data):
    """A sharded (fsdp2) checkpoint is a folder: the start of the next run swept temporaries with `unlink` and
    failed with a bare IsADirectoryError instead of resuming."""
    from geodino.run_lock import release_run_folder
    from geodino.train.pretrain import _prepare_output

    cfg = _cfg(tmp_path, tiny_data)
    ckpts = tmp_path / "run" / "checkpoints"
    half = ckpts / ".step_00000004.tmp-4242.ckpt"  # a kill during a sharded save
    half.mkdir(parents=True)
    (half / "__0_0.distcp").write_bytes(b"half a shard")
    (ckpts / "step_00000002.ckpt").mkdir()  # a complete sharded checkpoint, and last.ckpt's temporary link to it
    (ckpts / ".last.ckpt.tmp-4242").symlink_to("step_00000002.ckpt")
    try:
        _, resume = _prepare_output(cfg)
    finally:
        release_run_folder(tmp_path / "run")
    assert not half.exists() and not (ckpts / ".last.ckpt.tmp-4242").is_symlink()
    assert resume == ckpts / "step_00000002.ckpt" and resume.is_dir()  # what the link pointed at stays
