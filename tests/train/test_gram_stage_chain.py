"""The Gram stage's teacher: `gram.ckpt` reads what `init_from` reads (a run folder, an HF folder), and a killed
Gram-stage run resumes its Gram teacher (and everything else) bit for bit, before and after a refresh."""

from __future__ import annotations

import shutil
import warnings

import torch

from geodino.config import load_config
from geodino.models.checkpoints.convert import convert_checkpoint
from geodino.train import checkpointing as ck
from geodino.train.pretrain import PretrainConfig, pretrain
from geodino.train.pretrain_build import build_arch
from tests.train.conftest import ln_k_plateau, write_config

GRAM = ["ssl.gram.use_loss=true", "ssl.gram.loss_weight=2.0", "ssl.gram.img_level=true", "crops.gram=true"]


def _cfg(tmp_path, data, out, overrides):
    return load_config(PretrainConfig, write_config(tmp_path / f"{out}.yaml", tmp_path / out, data), overrides)


def test_gram_ckpt_takes_a_run_folder_and_an_hf_folder(tmp_path, tiny_data, tiny_run):
    """gram.ckpt=runs/NAME and gram.ckpt=an HF folder were refused ('has no meta.pt')."""
    teacher = ck.sub_state(ck.load_file(tiny_run / "checkpoints" / "last.ckpt")["state_dict"], "arch.teacher.backbone.")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        hf = convert_checkpoint(tiny_run / "export" / "teacher.pth", tmp_path / "hf", dst_layout="hf")
    for source in (tiny_run, hf):
        arch = build_arch(_cfg(tmp_path, tiny_data, "run", [*GRAM, f"ssl.gram.ckpt={source}"]))
        own = arch.gram_teacher["backbone"].state_dict()
        assert all(torch.equal(own[k], v) for k, v in teacher.items()), source
        assert bool(arch.gram_initialized)


@ln_k_plateau
def test_killed_gram_stage_resumes_its_gram_teacher_bit_identically(tmp_path, tiny_data, tiny_run):
    """Gram stage from the tiny run, Gram teacher refreshed after iteration 1 (once): killed after step 1 (before
    the refresh) or step 3 (after it), resumed to step 4, every weight equals the uninterrupted run's."""
    over = [
        *GRAM,
        f"init_from={tiny_run}",
        "init_student_from=student",
        "ssl.gram.rep_update=true",
        "ssl.gram.update_frequency=2",
        "ssl.gram.it_first_update=2",
        "ssl.gram.max_updates=1",
        "trainer.max_steps=4",
        "checkpoint.keep_last=10",
        "checkpoint.export_at_end=false",
    ]
    whole = pretrain(_cfg(tmp_path, tiny_data, "whole", over))
    ref = ck.load_file(whole / "checkpoints" / "step_00000004.ckpt")["state_dict"]
    step2_teacher = ck.sub_state(
        ck.load_file(whole / "checkpoints" / "step_00000002.ckpt")["state_dict"], "arch.teacher.backbone."
    )
    gram = ck.sub_state(ref, "arch.gram_teacher.backbone.")
    assert gram and all(torch.equal(gram[k], v) for k, v in step2_teacher.items())  # the refresh after iteration 1
    for killed in (1, 3):
        out = tmp_path / f"killed{killed}"
        shutil.copytree(whole, out)
        for p in (out / "checkpoints").iterdir():
            if p.name == "last.ckpt" or (ck.checkpoint_step(p) or 0) > killed:
                p.unlink()
        pretrain(_cfg(tmp_path, tiny_data, f"killed{killed}", over))
        got = ck.load_file(out / "checkpoints" / "step_00000004.ckpt")["state_dict"]
        assert got.keys() == ref.keys()
        bad = [k for k in ref if not torch.equal(got[k], ref[k])]
        assert bad == [], (killed, bad[:5])
