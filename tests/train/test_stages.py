"""Stage chaining: `init_from` copies the right weights into student, teacher and Gram teacher."""

from __future__ import annotations

import csv

import pytest
import torch

from geodino.config import load_config
from geodino.errors import CheckpointError
from geodino.train import checkpointing as ck
from geodino.train.pretrain import PretrainConfig, pretrain
from geodino.train.pretrain_build import build_arch
from tests.train.conftest import write_config

GRAM = ["ssl.gram.use_loss=true", "ssl.gram.loss_weight=2.0", "ssl.gram.img_level=true", "crops.gram=true"]


def _cfg(tmp_path, data, overrides):
    return load_config(PretrainConfig, write_config(tmp_path / "c.yaml", tmp_path / "run", data), overrides)


def _equal(module, state):
    own = module.state_dict()
    return own.keys() == state.keys() and all(torch.equal(own[k], state[k]) for k in own)


@pytest.fixture(scope="module")
def source(tiny_run):
    obj = ck.load_file(tiny_run / "checkpoints" / "last.ckpt")
    sd = obj["state_dict"]
    parts = {
        f"{w}.{m}": ck.sub_state(sd, f"arch.{w}.{m}.")
        for w in ("student", "teacher")
        for m in ("backbone", "dino_head", "ibot_head")
    }
    # the EMA teacher and the student differ after 2 steps: the tests below can tell which one was copied
    assert not torch.equal(
        parts["student.backbone"]["blocks.0.attn.qkv.weight"], parts["teacher.backbone"]["blocks.0.attn.qkv.weight"]
    )
    return parts


def test_gram_stage_continues_student_and_snapshots_teacher(tmp_path, tiny_data, tiny_run, source):
    cfg = _cfg(tmp_path, tiny_data, GRAM)
    arch = build_arch(cfg)
    assert not bool(arch.gram_initialized)
    ck.apply_init(arch, ck.read_init_source(tiny_run / "checkpoints" / "last.ckpt"), student_from="student")
    for m in ("backbone", "dino_head", "ibot_head"):
        assert _equal(arch.student[m], source[f"student.{m}"]), m
        assert _equal(arch.teacher[m], source[f"teacher.{m}"]), m
    assert _equal(arch.gram_teacher["backbone"], source["teacher.backbone"])
    assert bool(arch.gram_initialized)


def test_highres_stage_starts_student_and_gram_from_teacher(tmp_path, tiny_data, tiny_run, source):
    cfg = _cfg(tmp_path, tiny_data, GRAM)
    arch = build_arch(cfg)
    lines = ck.apply_init(arch, ck.read_init_source(tiny_run / "checkpoints" / "last.ckpt"), student_from="teacher")
    for m in ("backbone", "dino_head", "ibot_head"):
        assert _equal(arch.student[m], source[f"teacher.{m}"]), m
        assert _equal(arch.teacher[m], source[f"teacher.{m}"]), m
    assert _equal(arch.gram_teacher["backbone"], source["teacher.backbone"])
    assert any("Gram teacher <- teacher of" in line for line in lines)


def test_init_from_export_and_from_backbone_only(tmp_path, tiny_data, tiny_run, source):
    exported = tiny_run / "export" / "teacher.pth"
    arch = build_arch(_cfg(tmp_path, tiny_data, []))
    src = ck.read_init_source(exported)
    assert src.kind == "export" and src.has_heads
    ck.apply_init(arch, src)
    assert _equal(arch.student["ibot_head"], source["teacher.ibot_head"])
    # a backbone-only file (like an official release): backbone copied, heads stay fresh
    torch.save(source["teacher.backbone"], tmp_path / "official_like.pth")
    arch = build_arch(_cfg(tmp_path, tiny_data, []))
    fresh = {k: v.clone() for k, v in arch.student["dino_head"].state_dict().items()}
    src = ck.read_init_source(tmp_path / "official_like.pth")
    assert src.kind == "backbone" and not src.has_heads
    lines = ck.apply_init(arch, src)
    assert _equal(arch.student["backbone"], source["teacher.backbone"])
    assert _equal(arch.student["dino_head"], fresh)
    assert any("has no heads" in line for line in lines)
    with pytest.raises(CheckpointError, match=r"has no student weights .* use init_student_from=teacher"):
        ck.apply_init(arch, src, student_from="student")
    # the official eval-dump layout {"teacher": {"backbone.*", "dino_head.*", "ibot_head.*"}}
    dump = {f"backbone.{k}": v for k, v in source["teacher.backbone"].items()}
    dump.update({f"dino_head.{k}": v for k, v in source["teacher.dino_head"].items()})
    dump.update({f"ibot_head.{k}": v for k, v in source["teacher.ibot_head"].items()})
    torch.save({"teacher": dump}, tmp_path / "teacher_checkpoint.pth")
    src = ck.read_init_source(tmp_path / "teacher_checkpoint.pth")
    assert src.kind == "official-teacher" and src.has_heads


def test_chained_gram_stage_runs(tmp_path, tiny_data, tiny_run, source, capsys):
    """pretrain -> gram through `pretrain(cfg)`: the Gram term is on from step 0 and the run starts from the source."""
    cfg = _cfg(
        tmp_path,
        tiny_data,
        [
            *GRAM,
            f"init_from={tiny_run / 'checkpoints' / 'last.ckpt'}",
            "init_student_from=student",
            "trainer.max_steps=1",
            "checkpoint.export_at_end=false",
        ],
    )
    capsys.readouterr()
    out = pretrain(cfg)
    src = tiny_run / "checkpoints" / "last.ckpt"
    said = capsys.readouterr().err  # what the run starts from, on the console (an INFO log line before)
    assert f"geodino: init_from: student backbone <- student of {src}; teacher backbone <- teacher of {src}\n" in said
    assert f"geodino: init_from: dino_head, ibot_head <- {src}\n" in said
    rows = list(csv.DictReader(open(out / "logs" / "metrics.csv")))
    assert float(rows[0]["gram_loss"]) >= 0 and float(rows[0]["gram_weight"]) == pytest.approx(2.0)
    c = ck.load_file(out / "checkpoints" / "last.ckpt")
    assert c["geodino"]["init_from"].endswith("last.ckpt") and c["global_step"] == 1
    gram = ck.sub_state(c["state_dict"], "arch.gram_teacher.backbone.")
    assert all(torch.equal(gram[k], source["teacher.backbone"][k]) for k in gram)  # frozen, no refresh due


def test_continuing_from_an_export_says_what_it_loaded_and_the_heads_warm_up(tmp_path, tiny_data, tiny_run, capsys):
    """init_from an export (backbone only) with head_warmup_steps: the console says the backbone was loaded, that
    the heads start fresh and that they train alone first (nothing was said: the lines were INFO log records)."""
    import shutil

    export = tmp_path / "backbone.pth"  # the backbone alone (the run's export has its heads beside it)
    shutil.copy(tiny_run / "export" / "teacher.pth", export)
    cfg = _cfg(tmp_path, tiny_data, [f"init_from={export}", "head_warmup_steps=1", "checkpoint.export_at_end=false"])
    capsys.readouterr()
    pretrain(cfg)
    said = capsys.readouterr().err
    assert f"geodino: init_from: student backbone <- teacher of {export}; teacher backbone <- teacher of" in said
    assert f"geodino: init_from: {export} has no heads: dino_head and ibot_head start fresh" in said
    assert "geodino: the heads train alone (backbone frozen) for the first 1 step, then everything\n" in said
