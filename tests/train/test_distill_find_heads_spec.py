"""Distillation's teacher heads: a teacher spec with `?options` finds the heads in its file as the bare path does,
and a `teacher.heads=FILE` warmed up on another teacher is said in one line."""

from __future__ import annotations

import logging
from pathlib import Path
from types import SimpleNamespace

import pytest
import torch

from geodino.models.heads import DINOHead
from geodino.train.distill import DistillConfig
from geodino.train.distill.build import find_heads
from geodino.train.teacher_heads import save_heads_file

EMBED = 24


def _heads(seed: int) -> tuple[DINOHead, DINOHead]:
    torch.manual_seed(seed)
    return DINOHead(EMBED, 16, 32, 8, 3), DINOHead(EMBED, 16, 32, 8, 3)


def _cfg(spec: str, heads: str = "") -> DistillConfig:
    cfg = DistillConfig()
    cfg.teacher.spec, cfg.teacher.heads = spec, heads
    for section in (cfg.dino, cfg.ibot):
        section.head_n_prototypes, section.head_hidden_dim, section.head_bottleneck_dim = 16, 32, 8
        section.head_nlayers = 3
    return cfg


def _teacher_file(path: Path) -> Path:
    """An official eval dump with a (tiny, fake) backbone and the DINO/iBOT heads."""
    dino, ibot = _heads(0)
    state = {"backbone.cls_token": torch.zeros(1, 1, EMBED)}
    state |= {f"dino_head.{k}": v for k, v in dino.state_dict().items()}
    state |= {f"ibot_head.{k}": v for k, v in ibot.state_dict().items()}
    torch.save({"teacher": state}, path)
    return path


@pytest.mark.parametrize("tail", ["", "?sensor=imagenet", "?which=teacher", "?sensor=imagenet&bands=3"])
def test_spec_options_find_the_file_heads(tmp_path, tail) -> None:
    """`FILE?sensor=...` / `FILE?which=teacher` took a fresh warm-up (the spec text is not a file): now the file's
    heads, equal to the bare path's."""
    f = _teacher_file(tmp_path / "t.pth")
    teacher = SimpleNamespace(embed_dim=EMBED)
    found = find_heads(_cfg(f"{f}{tail}"), teacher, None, tmp_path / "run")
    assert found.dino is not None and found.source == str(f)
    want, _ = _heads(0)
    got = found.dino.state_dict()
    assert all(torch.equal(got[k], v) for k, v in want.state_dict().items())


def _heads_file(path: Path, fingerprint: str) -> Path:
    dino, ibot = _heads(1)
    save_heads_file(path, dino, ibot, {"teacher_spec": "arch:vit_small?seed=0", "teacher_fingerprint": fingerprint})
    return path


def _said(caplog) -> list[str]:
    return [r.getMessage() for r in caplog.records if "warmed up on another teacher" in r.getMessage()]


def test_given_heads_of_another_teacher_are_said(tmp_path, caplog) -> None:
    f = _heads_file(tmp_path / "h.heads.pth", "aaa111")
    fb = SimpleNamespace(fingerprint="bbb222")
    with caplog.at_level(logging.WARNING, logger="geodino.distill"):
        found = find_heads(_cfg("arch:vit_small?seed=1", str(f)), SimpleNamespace(embed_dim=EMBED), fb, tmp_path)
    assert found.dino is not None  # warned, not refused
    said = _said(caplog)
    assert len(said) == 1 and "aaa111" in said[0] and "bbb222" in said[0] and str(f) in said[0]
    assert "arch:vit_small?seed=0" in said[0] and "arch:vit_small?seed=1" in said[0]


def test_given_heads_of_this_teacher_are_not_said(tmp_path, caplog) -> None:
    f = _heads_file(tmp_path / "h.heads.pth", "aaa111")
    fb = SimpleNamespace(fingerprint="aaa111")
    with caplog.at_level(logging.WARNING, logger="geodino.distill"):
        find_heads(_cfg("arch:vit_small?seed=0", str(f)), SimpleNamespace(embed_dim=EMBED), fb, tmp_path)
    assert _said(caplog) == []


def test_which_student_takes_the_student_heads(tmp_path) -> None:
    """`CKPT?which=student` loads the student backbone: its heads are the student's, not the teacher's."""
    from geodino.train.checkpointing import FORMAT, PREFIX

    state = {}
    for role, seed in (("teacher", 0), ("student", 1)):
        for name, head in zip(("dino_head", "ibot_head"), _heads(seed), strict=True):
            state |= {f"{PREFIX}{role}.{name}.{k}": v for k, v in head.state_dict().items()}
    f = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "geodino": {"format": FORMAT}}, f)
    teacher = SimpleNamespace(embed_dim=EMBED)
    for which, seed in (("teacher", 0), ("student", 1)):
        found = find_heads(_cfg(f"{f}?which={which}"), teacher, None, tmp_path / "run")
        want = _heads(seed)[0].state_dict()
        assert all(torch.equal(found.dino.state_dict()[k], v) for k, v in want.items()), which
