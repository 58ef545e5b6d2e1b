"""Checkpoint files: atomic writes, contents, export to the official layout and its round trip."""

from __future__ import annotations

import os

import pytest
import torch

from geodino.errors import CheckpointError
from geodino.models import build_model
from geodino.train import checkpointing as ck
from geodino.train.module import CheckpointConfig, SSLModule, TrainerConfig, build_trainer
from tests.train.standin import StandInArch, loader_factory, schedules


def train(out, max_steps=4, every=2, meta=None):
    torch.manual_seed(0)
    arch = StandInArch()
    bb = arch.student["backbone"]
    module = SSLModule(
        arch,
        schedules,
        loader_factory=loader_factory(),
        checkpoint_dir=out / "checkpoints",
        checkpoint_meta=meta or (lambda s: {"backbone": dict(bb.config), "data": {"next_step": s}}),
    )
    tcfg = TrainerConfig(max_steps=max_steps, accelerator="cpu", precision="32-true", loggers=[], progress_bar=False)
    trainer, cb = build_trainer(tcfg, CheckpointConfig(every_n_steps=every, keep_last=2), out)
    trainer.fit(module)
    return arch, cb


def test_checkpoint_contents_and_rotation(tmp_path):
    arch, cb = train(tmp_path, max_steps=5, every=2)
    folder = tmp_path / "checkpoints"
    # every 2 steps + the end (5); keep_last=2 deletes step 2
    assert sorted(os.listdir(folder)) == ["last.ckpt", "step_00000004.ckpt", "step_00000005.ckpt"]
    assert cb.last_path == folder / "step_00000005.ckpt"
    c = ck.load_file(folder / "last.ckpt")
    assert ck.is_training_checkpoint(c)
    assert c["geodino"]["step"] == 5 and c["geodino"]["data"]["next_step"] == 5
    assert c["global_step"] == 5 and len(c["optimizer_states"]) == 1
    for part in ("student", "teacher"):
        for sub in ("backbone", "dino_head", "ibot_head"):
            assert ck.sub_state(c["state_dict"], f"arch.{part}.{sub}."), (part, sub)
    torch.testing.assert_close(
        ck.sub_state(c["state_dict"], "arch.teacher.backbone."), arch.teacher["backbone"].state_dict()
    )


def test_interrupted_write_leaves_previous_checkpoint(tmp_path, monkeypatch):
    import lightning.fabric.utilities.cloud_io as cloud_io

    calls = {"n": 0}
    real = cloud_io._atomic_save

    def dying_save(checkpoint, filepath):
        calls["n"] += 1
        if calls["n"] == 2:  # the second checkpoint fails half-way through writing (disk full)
            with open(filepath, "wb") as f:
                f.write(b"partial")
            raise OSError(28, "No space left on device")
        return real(checkpoint, filepath)

    monkeypatch.setattr(cloud_io, "_atomic_save", dying_save)
    monkeypatch.setattr("lightning.fabric.plugins.io.torch_io._atomic_save", dying_save)
    from geodino.errors import TrainingError

    # one line naming the file, the reason and the checkpoint kept (was the bare OSError)
    with pytest.raises(TrainingError, match=r"cannot write checkpoint .*step_00000004\.ckpt \(No space left on dev"):
        train(tmp_path, max_steps=6, every=2)
    folder = tmp_path / "checkpoints"
    assert sorted(os.listdir(folder)) == ["last.ckpt", "step_00000002.ckpt"]  # no partial file, no temp file
    assert ck.latest_checkpoint(folder) == folder / "step_00000002.ckpt"
    assert ck.load_file(folder / "last.ckpt")["global_step"] == 2


# the stand-in module saves no run config, so its export records no normalisation (that warning is the subject of
# test_normalization_records' export test)
@pytest.mark.filterwarnings("ignore:export .* records no input normalisation:UserWarning")
def test_export_round_trip(tmp_path):
    arch, cb = train(tmp_path, max_steps=2, every=2)
    pth, st, heads = ck.export(cb.last_path, tmp_path / "exp" / "model.pth")
    assert (pth.name, st.name, heads.name) == ("model.pth", "model.safetensors", "model.heads.pth")
    sd = torch.load(pth, weights_only=True)
    assert "blocks.0.attn.qkv.weight" in sd and "cls_token" in sd and not any(k.startswith("arch.") for k in sd)
    cfg = torch.load(heads, weights_only=True)["backbone"]
    for state in (sd, ck.load_file(st)):
        model = build_model(**cfg)
        model.load_state_dict(state, strict=True)
        x = torch.randn(1, 3, 16, 16)
        with torch.no_grad():
            a = model.forward_features(x)["x_norm_clstoken"]
            b = arch.teacher["backbone"].eval().forward_features(x)["x_norm_clstoken"]
        torch.testing.assert_close(a, b)
    h = torch.load(heads, weights_only=True)
    torch.testing.assert_close(h["dino_head"], arch.teacher["dino_head"].state_dict())
    torch.testing.assert_close(h["ibot_head"], arch.teacher["ibot_head"].state_dict())
    # the student can be exported too, and existing outputs are not replaced silently
    from geodino.errors import InputError

    with pytest.raises(InputError, match="already exists"):
        ck.export(cb.last_path, tmp_path / "exp" / "model.pth")
    p2, _, _ = ck.export(cb.last_path, tmp_path / "exp" / "student", which="student")
    torch.testing.assert_close(torch.load(p2, weights_only=True), arch.student["backbone"].state_dict())


def test_export_rejects_non_training_files(tmp_path):
    torch.save({"w": torch.zeros(2)}, tmp_path / "plain.pth")
    with pytest.raises(CheckpointError, match=r"plain.pth was not written by geodino pretrain"):
        ck.export(tmp_path / "plain.pth", tmp_path / "out.pth")
    with pytest.raises(CheckpointError, match=r"missing.ckpt not found"):
        ck.export(tmp_path / "missing.ckpt", tmp_path / "out.pth")
    (tmp_path / "junk.ckpt").write_bytes(b"not a checkpoint")
    with pytest.raises(CheckpointError, match=r"junk.ckpt cannot be read"):
        ck.export(tmp_path / "junk.ckpt", tmp_path / "out.pth")


def test_a_resume_may_switch_a_sources_on_error_but_not_its_paths(tmp_path):
    """A run stopped by a corrupt image resumes with on_error: skip (the steps before read the same samples
    either way); the error message's advice was refused as a changed config."""
    from geodino.train.checkpointing import check_resume_config

    saved = {"data": {"sources": [{"type": "images", "paths": ["a"], "on_error": None}]}, "seed": 0}
    ckpt = {"geodino": {"config": saved}}
    skip = {"data": {"sources": [{"type": "images", "paths": ["a"], "on_error": "skip"}]}, "seed": 0}
    check_resume_config(ckpt, tmp_path / "c.ckpt", skip, 4)
    other = {"data": {"sources": [{"type": "images", "paths": ["b"], "on_error": None}]}, "seed": 0}
    with pytest.raises(CheckpointError, match=r"data.sources\[0\].paths=\['a'\] but this run has"):
        check_resume_config(ckpt, tmp_path / "c.ckpt", other, 4)
