"""A `geodino distill` checkpoint (format `geodino-distill`) read by every other reader, as `load_backbone` reads it
since ebdfdaa: `init_from` (pretraining, and a distillation student's `init_from`) takes student NAME's backbone and
DINO/iBOT heads with `FILE?which=NAME` (`NAME.raw`: its raw weights; it said "holds no tensors"); `geodino export`
names `geodino convert CKPT OUT --which NAME` (it said "not written by geodino pretrain"); `geodino convert --which`
help names NAME / NAME.raw; feature-cache fingerprints name the network loaded, so FILE, ?which=NAME and NAME.ema
of one student share one (they were three), while pretraining checkpoints keep theirs."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pytest
import torch

from geodino import cli
from geodino.backbones import load_backbone
from geodino.backbones.frozen import sha256_path
from geodino.config import load_config
from geodino.errors import CheckpointError
from geodino.models import build_model
from geodino.train import checkpointing as ck
from geodino.train.distill import distill
from geodino.train.distill.config import StudentSpec
from geodino.train.distill.students import _init_state
from geodino.train.pretrain import PretrainConfig
from geodino.train.pretrain_build import build_arch
from geodino.train.pretrain_init import adopt_init_architecture
from tests.train.conftest import write_config
from tests.train.test_distill import _cfg

pytestmark = pytest.mark.filterwarnings("ignore:.*records no input normalisation")


@pytest.fixture(scope="module")
def run(images, tmp_path_factory) -> tuple[Path, Path, dict]:
    """A 2-step, 2-student (tiny, small) run: its step-2 checkpoint, a one-student copy (tiny) and the loaded file."""
    root = tmp_path_factory.mktemp("distill_readers")
    distill(_cfg(images, root / "run"))
    ckpt = root / "run" / "checkpoints" / "step_00000002.ckpt"
    obj = torch.load(ckpt, map_location="cpu", weights_only=True)
    one = {**obj, **{k: {"tiny": obj[k]["tiny"]} for k in ("students", "students_ema", "backbones")}}
    torch.save(one, root / "one.ckpt")
    return ckpt, root / "one.ckpt", obj


def _part(full: dict, prefix: str) -> dict:
    return {k[len(prefix) :]: v for k, v in full.items() if k.startswith(prefix)}


def _same(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_init_from_takes_a_students_backbone_and_heads(run) -> None:
    ckpt, _, obj = run
    for which, group in (("small", "students_ema"), ("small.ema", "students_ema"), ("small.raw", "students")):
        src = ck.read_init_source(f"{ckpt}?which={which}")
        full = obj[group]["small"]
        assert src.kind == "distill" and src.path == ckpt and src.has_heads, which
        assert _same(src.teacher, _part(full, "backbone.")), which
        assert all(_same(src.heads[h], _part(full, f"{h}.")) for h in ("dino_head", "ibot_head")), which
        assert _same(src.student, _part(obj["students"]["small"], "backbone.")), which
        assert src.backbone_config == obj["backbones"]["small"], which
    # EMA and raw weights differ after 2 steps: the choice is real
    assert not _same(_part(obj["students_ema"]["small"], "backbone."), _part(obj["students"]["small"], "backbone."))
    # a run folder stands for its newest checkpoint, ?which= kept
    assert ck.read_init_source(f"{ckpt.parent.parent}?which=tiny").path == ckpt


def test_init_from_bare_file_and_refusals(run, tmp_path) -> None:
    ckpt, one, obj = run
    with pytest.raises(CheckpointError) as exc:
        ck.read_init_source(ckpt)
    msg = str(exc.value)
    assert "\n" not in msg and "2 students (tiny, small)" in msg and "which=tiny.raw" in msg, msg
    src = ck.read_init_source(one)  # one student: no which needed
    assert _same(src.teacher, _part(obj["students_ema"]["tiny"], "backbone."))
    with pytest.raises(CheckpointError, match="names no student"):
        ck.read_init_source(f"{ckpt}?which=teacher")
    with pytest.raises(CheckpointError, match="accepts one option"):
        ck.read_init_source(f"{ckpt}?which=tiny&bands=3")
    pth = tmp_path / "b.pth"
    torch.save(_part(obj["students_ema"]["tiny"], "backbone."), pth)
    with pytest.raises(CheckpointError, match="not one"):
        ck.read_init_source(f"{pth}?which=tiny")


def test_pretraining_starts_from_a_student(run, tmp_path, images) -> None:
    """`ssl.student.arch=from_init` builds the student's architecture and heads; every module is set from it."""
    ckpt, _, obj = run
    for student_from, group in (("teacher", "students_ema"), ("student", "students")):
        extra = f"init_from: {ckpt}?which=small\n"
        cfg_path = write_config(tmp_path / "c.yaml", tmp_path / "run", images, extra)
        cfg = load_config(PretrainConfig, cfg_path, ["ssl.student.arch=from_init"])
        src = adopt_init_architecture(cfg)
        arch = build_arch(cfg)
        lines = ck.apply_init(arch, src, student_from=student_from)
        picked = "student small (EMA)" if student_from == "teacher" else "student small (raw)"
        # the log names the student taken (it said "teacher of FILE", which a distill checkpoint does not hold)
        assert lines[0] == f"student backbone <- {picked} of {ckpt}; teacher backbone <- student small (EMA) of {ckpt}"
        for module, full in ((arch.teacher, obj["students_ema"]["small"]), (arch.student, obj[group]["small"])):
            got = {
                f"{n}.{k}": v for n in ("backbone", "dino_head", "ibot_head") for k, v in module[n].state_dict().items()
            }
            assert _same(got, dict(full)), student_from


def test_a_distillation_student_starts_from_a_one_student_checkpoint(run) -> None:
    _, one, obj = run
    spec = StudentSpec(name="t", arch="vit_tiny", overrides={"depth": 1, "n_storage_tokens": 1}, init_from=str(one))
    backbone = build_model("vit_tiny", patch_size=8, in_chans=3, depth=1, n_storage_tokens=1, device="meta")
    assert _same(_init_state(spec, 0, backbone), _part(obj["students_ema"]["tiny"], "backbone."))


def test_export_names_convert_and_convert_help_names_students(run, tmp_path, capsys) -> None:
    ckpt, _, obj = run
    out = tmp_path / "small.pth"
    assert cli.main(["export", str(ckpt), str(out)]) != 0
    err = capsys.readouterr().err
    assert f"geodino convert {ckpt} {out} --which tiny" in err and "tiny, small" in err, err
    assert "not written by geodino pretrain" not in err
    assert cli.main(["convert", str(ckpt), str(out), "--which", "tiny"]) == 0  # the command it names works
    assert _same(
        torch.load(out, map_location="cpu", weights_only=True), _part(obj["students_ema"]["tiny"], "backbone.")
    )
    with pytest.raises(SystemExit):
        cli.main(["convert", "--help"])
    assert "NAME.raw" in capsys.readouterr().out


def _old_fingerprint(path: Path, which: str) -> str:
    """The fingerprint a checkpoint's backbone had before: sha256 of {file: sha256 of the file, which}."""
    src = {"file": sha256_path(path), "which": which}
    return hashlib.sha256(json.dumps(src, sort_keys=True, default=str).encode()).hexdigest()


def test_fingerprints_name_the_network_loaded(run, tmp_path) -> None:
    _, one, obj = run
    fps = {w: load_backbone(f"{one}{w}").fingerprint for w in ("", "?which=tiny", "?which=tiny.ema", "?which=tiny.raw")}
    assert fps[""] == fps["?which=tiny"] == fps["?which=tiny.ema"], fps
    assert fps["?which=tiny.raw"] != fps[""]
    # a pretraining checkpoint's teacher and student keep the fingerprints existing feature caches were keyed by
    teacher, student = (_part(obj[g]["tiny"], "backbone.") for g in ("students_ema", "students"))
    state = {
        **{f"arch.teacher.backbone.{k}": v for k, v in teacher.items()},
        **{f"arch.student.backbone.{k}": v for k, v in student.items()},
    }
    pre = tmp_path / "last.ckpt"
    torch.save({"state_dict": state, "geodino": {"format": ck.FORMAT, "backbone": obj["backbones"]["tiny"]}}, pre)
    for spec, which in (("", "teacher"), ("?which=teacher", "teacher"), ("?which=student", "student")):
        assert load_backbone(f"{pre}{spec}").fingerprint == _old_fingerprint(pre, which), spec


def test_which_paths_pass_the_existence_checks(run, images, tmp_path, monkeypatch) -> None:
    """`students[i].init_from` and `geodino.pretrain(init_from=)` check FILE of `FILE?which=NAME`: the distillation
    check refused it as 'not found', and the Python API judged `.ckpt?which=n` headless by its suffix (adding a
    heads warm-up to a start whose checkpoint holds the student's heads)."""
    from types import SimpleNamespace

    import geodino.train.pretrain as pretrain_module
    from geodino.train import api
    from geodino.train.distill.build import check_files

    ckpt, _, _ = run
    cfg = SimpleNamespace(
        teacher=SimpleNamespace(heads=""), students=[SimpleNamespace(init_from=f"{ckpt}?which=small")]
    )
    check_files(cfg)  # the file exists: no error
    cfg.students[0].init_from = f"{ckpt.parent / 'missing.ckpt'}?which=small"
    with pytest.raises(CheckpointError, match=r"students\[0\]\.init_from file .*missing\.ckpt\?which=small not found"):
        check_files(cfg)
    seen: list = []
    monkeypatch.setattr(pretrain_module, "pretrain", lambda c, *a, **k: seen.append(c) or tmp_path)
    api.pretrain(images, out=tmp_path / "p", steps=20, init_from=f"{ckpt}?which=small")
    assert len(seen) == 1 and float(seen[0].head_warmup_steps) == 0.0  # no warm-up: the checkpoint has heads
    seen.clear()
    api.pretrain(images, out=tmp_path / "q", steps=20, init_from=tmp_path / "nohead.pth")  # a bare backbone file
    assert float(seen[0].head_warmup_steps) > 0.0  # the contrast: a file without heads gets the warm-up


def test_a_distillation_student_starts_from_a_student_named_by_which(run) -> None:
    ckpt, _, obj = run
    spec = StudentSpec(
        name="t", arch="vit_tiny", overrides={"depth": 1, "n_storage_tokens": 1}, init_from=f"{ckpt}?which=tiny"
    )
    backbone = build_model("vit_tiny", patch_size=8, in_chans=3, depth=1, n_storage_tokens=1, device="meta")
    assert _same(_init_state(spec, 0, backbone), _part(obj["students_ema"]["tiny"], "backbone."))
    spec.init_from = f"{ckpt}?which=tiny.raw"
    assert _same(_init_state(spec, 0, backbone), _part(obj["students"]["tiny"], "backbone."))


def test_a_teacher_spec_naming_a_student_takes_its_heads(run, tmp_path) -> None:
    """A distill checkpoint as `teacher.spec=CKPT?which=NAME` brings student NAME's DINO/iBOT heads (EMA, or raw
    with NAME.raw), as a bare one-student file does; with `?which=` they were dropped and a fresh warm-up ran."""
    from types import SimpleNamespace

    from geodino.train.distill import DistillConfig
    from geodino.train.distill.build import find_heads

    ckpt, _, obj = run
    for which, group in (("small", "students_ema"), ("small.raw", "students")):
        cfg = DistillConfig()
        cfg.teacher.spec = f"{ckpt}?which={which}"
        dim = obj[group]["small"]["dino_head.mlp.0.weight"].shape[1]
        found = find_heads(cfg, SimpleNamespace(embed_dim=dim), None, tmp_path / "out")
        assert found.dino is not None and found.source == str(ckpt), which
        want = _part(obj[group]["small"], "dino_head.")
        assert _same(found.dino.state_dict(), want), which
