"""Which step checkpoints a run keeps, and which it resumes from: `keep_last` values, a resume from an earlier
step of the same folder (the later checkpoints are another branch), and the old mid-step `hpc_ckpt_*.ckpt` files of
Lightning's SLURM handler. Each test fails on the code before its fix."""

from __future__ import annotations

import pytest

from tests.train.conftest import write_config


@pytest.mark.parametrize("value", [-1, -3])
def test_a_negative_keep_last_is_refused_in_one_line_naming_the_key(tmp_path, tiny_data, capsys, value):
    """`checkpoint.keep_last=-1` (pretrain) and `train.keep_last=-1` (distill) kept every checkpoint without a word
    (the clean-up ran only for values > 0), so a typo could fill the disk. Refused now, before the run folder is
    made, naming the key and what 0 and N mean."""
    from geodino.cli import main
    from geodino.config import load_config
    from geodino.errors import ConfigError
    from geodino.train.distill import DistillConfig
    from tests.train.test_distill import _overrides

    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    capsys.readouterr()
    assert main(["pretrain", "-c", str(cfg), f"checkpoint.keep_last={value}"]) == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert f"checkpoint.keep_last={value} must be 0 (keep every step checkpoint)" in err, err
    assert "N >= 1 (keep the newest N)" in err
    assert not (tmp_path / "run").exists()

    with pytest.raises(ConfigError, match=rf"^train\.keep_last={value} must be 0 \(keep every step checkpoint\)"):
        load_config(DistillConfig, None, _overrides(tmp_path, tmp_path / "d", f"train.keep_last={value}")).validate()


def test_keep_last_zero_and_positive_values_pass() -> None:
    """0 keeps every checkpoint (what it always meant) and stays valid, as do positive counts."""
    from geodino.train.config import CheckpointConfig

    for n in (0, 1, 5):
        CheckpointConfig(keep_last=n).validate()
