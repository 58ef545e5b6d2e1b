"""Pretraining's probe batch (the data read once at the start, before housekeeping) is read only when the run trains:
a re-run of a finished run (its newest checkpoint is at `trainer.max_steps`) read one batch anyway to check data it
will not train on. The resume step is found before the probe (`geodino.train.resume_point`, as distillation does)."""

from __future__ import annotations

import shutil

import pytest

from geodino.config import load_config
from geodino.train.pretrain import PretrainConfig, pretrain
from tests.train.conftest import write_config


def _count_collates(monkeypatch) -> list[int]:
    """The batch size of every SSL batch collated from now on (the probe's and every training step's)."""
    import geodino.data.loaders as loaders

    sizes: list[int] = []
    collate = loaders.collate_ssl

    def counted(samples, **kw):
        sizes.append(len(samples))
        return collate(samples, **kw)

    monkeypatch.setattr(loaders, "collate_ssl", counted)
    return sizes


@pytest.mark.parametrize(("kind", "reads"), [("finished", 0), ("killed after step 1", 2)])
def test_a_rerun_reads_a_batch_only_when_it_trains(tiny_run, tiny_data, tmp_path, monkeypatch, kind, reads) -> None:
    """A finished run re-run collates no batch and still exports; a run killed after step 1 collates the probe's
    batch and step 2's (and ends at step 2)."""
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out, symlinks=True)
    if kind != "finished":
        (out / "checkpoints" / "step_00000002.ckpt").unlink()
        (out / "checkpoints" / "last.ckpt").unlink()
    shutil.rmtree(out / "export")
    sizes = _count_collates(monkeypatch)
    pretrain(load_config(PretrainConfig, write_config(tmp_path / "c.yaml", out, tiny_data)))
    assert len(sizes) == reads, sizes
    assert (out / "export" / "teacher.pth").is_file()
    assert (out / "checkpoints" / "step_00000002.ckpt").is_file()


def test_a_checkpoint_named_finished_that_is_not_still_probes(tiny_run, tiny_data, tmp_path, monkeypatch) -> None:
    """The probe is skipped by the checkpoint's name; a step-1 checkpoint renamed to step 2 (the step saved in it is
    1) still has the data probed, once, before the step it trains."""
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out, symlinks=True)
    ckpts = out / "checkpoints"
    (ckpts / "last.ckpt").unlink()
    (ckpts / "step_00000001.ckpt").replace(ckpts / "step_00000002.ckpt")
    sizes = _count_collates(monkeypatch)
    pretrain(load_config(PretrainConfig, write_config(tmp_path / "c.yaml", out, tiny_data)))
    assert len(sizes) == 2, sizes


def test_a_resume_from_a_named_checkpoint_probes(tiny_run, tiny_data, tmp_path, monkeypatch) -> None:
    """`checkpoint.resume=PATH`: its step is known only once the file is read, so the data is probed as before."""
    out = tmp_path / "run"
    shutil.copytree(tiny_run, out, symlinks=True)
    sizes = _count_collates(monkeypatch)
    resume = f"checkpoint.resume={out / 'checkpoints' / 'step_00000002.ckpt'}"
    pretrain(load_config(PretrainConfig, write_config(tmp_path / "c.yaml", out, tiny_data), [resume]))
    assert len(sizes) == 1, sizes


def test_a_finished_rerun_still_refuses_a_corrupt_newest_checkpoint(tiny_run, tiny_data, tmp_path) -> None:
    """No probe, but the resume checkpoint is still read and checked: a truncated newest one is refused."""
    from geodino.errors import CheckpointError

    out = tmp_path / "run"
    shutil.copytree(tiny_run, out, symlinks=True)
    (out / "checkpoints" / "last.ckpt").unlink()
    (out / "checkpoints" / "step_00000002.ckpt").write_bytes(b"truncated")
    with pytest.raises(CheckpointError, match=r"step_00000002\.ckpt, is corrupt or truncated"):
        pretrain(load_config(PretrainConfig, write_config(tmp_path / "c.yaml", out, tiny_data)))
