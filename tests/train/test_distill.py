"""`distill(cfg)` end to end on tiny images: warm-up, two students, export in the official layout, resume, and
the bad-input paths (one line each, exit code 2 through the CLI)."""

from __future__ import annotations

import csv
import re
from pathlib import Path

import numpy as np
import pytest
import torch

from geodino.config import load_config
from geodino.errors import CheckpointError, ConfigError, InputError
from geodino.train.distill import DistillConfig, distill

TEACHER = "arch:vit_tiny?seed=0&patch_size=8&depth=2&n_storage_tokens=1"
HEADS = "{head_n_prototypes: 64, head_hidden_dim: 32, head_bottleneck_dim: 16}"


def _cfg(images: Path, out: Path, *extra: str) -> DistillConfig:
    return load_config(DistillConfig, None, _overrides(images, out, *extra))


def _overrides(images: Path, out: Path, *extra: str) -> list[str]:
    """The tiny run's `key=value` overrides (for `load_config` or the CLI)."""
    return [
        f"output_dir={out}",
        f"teacher.spec={TEACHER}",
        "teacher.head_warmup_steps=2",
        f"dino={HEADS}",
        f"ibot={HEADS}",
        f"data.sources=[{{type: images, paths: [{images}], sensor: imagenet}}]",
        "crops={global_size: 32, local_size: 16, n_local: 2, vflips: false, rot90: false}",  # web photos: up kept
        "students=[{name: tiny, arch: vit_tiny, drop_path_rate: 0.0, overrides: {depth: 1, n_storage_tokens: 1}},"
        " {name: small, arch: vit_small, drop_path_rate: 0.0, overrides: {depth: 1}}]",
        "schedules.lr={start: 0.0, peak: 0.0, end: 1.0e-3, warmup_iters: 0, cosine_iters: 1}",
        # 1 - 10/steps (0 for a few steps): the exported EMA is what the students learned, not their init
        "schedules.momentum={start: 0.0, peak: 0.0, end: 1.0}",
        "train.max_steps=2",
        "train.global_batch_size=4",
        "train.num_workers=0",
        "train.device=cpu",
        "train.log_every_n_steps=1",
        "train.checkpoint_every_n_steps=1",
        "train.progress_bar=false",
        *extra,
    ]


@pytest.fixture(scope="module")
def run(images, tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    out = tmp_path_factory.mktemp("distill") / "run"
    return out, distill(_cfg(images, out, "train.loggers=[csv, tensorboard]"))


def test_two_students_export_official_layout_and_load_strict(run) -> None:
    from safetensors.torch import load_file

    from geodino.backbones import load_backbone
    from geodino.models import build_model

    out, exports = run
    assert set(exports) == {"tiny", "small"}
    for name, pth in exports.items():
        assert pth == out / name / f"{name}.pth" and pth.is_file()
        state = torch.load(pth, map_location="cpu", weights_only=True)
        heads = torch.load(out / name / f"{name}.heads.pth", map_location="cpu", weights_only=True)
        model = build_model(**heads["backbone"])
        model.load_state_dict(state, strict=True)  # official key layout, nothing missing or extra
        assert "cls_token" in state and "blocks.0.attn.qkv.weight" in state and "storage_tokens" in state
        st = load_file(str(out / name / f"{name}.safetensors"))
        assert st.keys() == state.keys()
        fb = load_backbone(str(pth))
        assert fb.embed_dim == model.embed_dim and fb.patch_size == 8
        assert heads["dino_head"]["last_layer.weight"].shape[0] == 64
    assert (out / "teacher.heads.pth").is_file()  # the warm-up's heads, reusable with teacher.heads=
    assert (out / "checkpoints" / "step_00000002.ckpt").is_file()
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(float(r["step"])) for r in rows] == [0, 1]
    assert all(np.isfinite(float(r[f"{n}/loss"])) for r in rows for n in ("tiny", "small"))
    png = b"\x89PNG\r\n\x1a\n"
    assert (out / "curves.png").read_bytes()[:8] == png and (out / "schedules.png").read_bytes()[:8] == png
    events = list((out / "tensorboard").glob("events.out.tfevents.*"))  # train.loggers=[csv, tensorboard]
    assert len(events) == 1 and events[0].stat().st_size > 0


def test_distill_curves_plot_every_student_and_the_schedules(tmp_path) -> None:
    from geodino.train.curves import plot_distill_log

    log = tmp_path / "log.csv"
    assert plot_distill_log(log) is None  # no log yet: nothing drawn
    log.write_text("step,loss,a/loss,a/dino_global,b/loss,a/grad_norm/backbone,lr\n0,2.0,1.0,0.5,1.0,3.0,0.1\n")
    assert plot_distill_log(log) == tmp_path / "curves.png"
    assert (tmp_path / "curves.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_export_is_the_ema_and_resume_continues(run, images) -> None:
    out, exports = run
    ck = torch.load(out / "checkpoints" / "step_00000002.ckpt", map_location="cpu", weights_only=True)
    ema = {k[len("backbone.") :]: v for k, v in ck["students_ema"]["tiny"].items() if k.startswith("backbone.")}
    raw = {k[len("backbone.") :]: v for k, v in ck["students"]["tiny"].items() if k.startswith("backbone.")}
    exported = torch.load(exports["tiny"], map_location="cpu", weights_only=True)
    assert all(torch.equal(exported[k], ema[k]) for k in exported)
    assert any(not torch.equal(exported[k], raw[k]) for k in exported)


def test_a_killed_run_resumes_bit_identically_without_repeating_log_rows(run, images, tmp_path) -> None:
    """As if killed after step 1's checkpoint: the same command resumes there, reuses the warmed-up heads, makes the
    same step-2 checkpoint and leaves one log row per step (a resume appended the rows after its checkpoint twice)."""
    import shutil

    src, _ = run
    out = tmp_path / "run"
    shutil.copytree(src, out)
    (out / "checkpoints" / "step_00000002.ckpt").unlink()
    heads = (out / "teacher.heads.pth").read_bytes()
    distill(_cfg(images, out))
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(float(r["step"])) for r in rows] == [0, 1]
    assert (out / "teacher.heads.pth").read_bytes() == heads  # no second warm-up
    a, b = (torch.load(d / "checkpoints" / "step_00000002.ckpt", weights_only=True) for d in (src, out))
    for part in ("students", "students_ema"):
        for name in a[part]:
            for k, v in a[part][name].items():
                assert torch.equal(b[part][name][k], v), (part, name, k)


def test_a_resume_refuses_a_changed_recipe_length_or_teacher(run, images, tmp_path) -> None:
    """A resume accepted any config and rewrote config.yaml to it: more steps stretch the schedules of a run half
    done; another teacher was distilled through the first teacher's warmed-up heads."""
    import shutil

    src, _ = run
    out = tmp_path / "run"
    shutil.copytree(src, out)
    config = (out / "config.yaml").read_text()
    cases = [
        ("train.max_steps=3", r"written with train.max_steps=2 but this run has train.max_steps=3; a resumed run"),
        ("koleo.loss_weight=0.5", r"written with koleo.loss_weight=0.1 but this run has koleo.loss_weight=0.5"),
        (
            "students=[{name: tiny, arch: vit_tiny, drop_path_rate: 0.1, overrides: {depth: 1, n_storage_tokens: 1}},"
            " {name: small, arch: vit_small, drop_path_rate: 0.0, overrides: {depth: 1}}]",
            r"students\[0\].drop_path_rate=0.0 but this run has students\[0\].drop_path_rate=0.1",
        ),
    ]
    for override, message in cases:
        with pytest.raises(CheckpointError, match=message):
            distill(_cfg(images, out, override))
        assert (out / "config.yaml").read_text() == config
    # a new run in the folder (no checkpoints yet) with another teacher: the heads warmed up for the first refuse
    shutil.rmtree(out / "checkpoints")
    other = TEACHER.replace("seed=0", "seed=1")
    with pytest.raises(CheckpointError, match=r"teacher.heads.pth holds heads warmed up on another teacher"):
        distill(_cfg(images, out, f"teacher.spec={other}"))


def test_placement_of_students_and_error_policy_may_change_on_resume() -> None:
    """Which processes train a student (ranks, share) is the machine's business, not the run's; a source's
    on_error may go from stop to skip to get past a corrupt image."""
    from geodino.train.checkpointing import changed_resume_field
    from geodino.train.distill.export import RESUME_FIXED, RESUME_FREE_FIELDS

    old = {"students": [{"name": "a", "ranks": [0, 2], "share": None}], "train": {"seed": 0, "num_workers": 2}}
    new = {"students": [{"name": "a", "ranks": [0, 4], "share": None}], "train": {"seed": 0, "num_workers": 8}}
    old["data"] = {"sources": [{"paths": ["x"], "on_error": "stop"}]}
    new["data"] = {"sources": [{"paths": ["x"], "on_error": "skip"}]}
    assert changed_resume_field(old, new, RESUME_FIXED, free_fields=()) == ("data.sources[0].on_error", "stop", "skip")
    assert changed_resume_field(old, new, RESUME_FIXED, free_fields=RESUME_FREE_FIELDS) is None
    new["students"][0]["name"] = "b"
    assert changed_resume_field(old, new, RESUME_FIXED, free_fields=RESUME_FREE_FIELDS)[0] == "students[0].name"


def test_the_teacher_path_may_change_on_resume_and_the_teacher_may_not() -> None:
    """teacher.fast says how the frozen teacher computes (within its measured tolerance), not what it is: a run whose
    compile fails on a new machine resumes with teacher.fast=off; checkpoints written before the key resume too."""
    from geodino.train.checkpointing import changed_resume_field
    from geodino.train.distill.export import RESUME_FIXED, RESUME_FREE, RESUME_FREE_FIELDS

    old = {"teacher": {"spec": "t.pth"}}
    new = {"teacher": {"spec": "t.pth", "fast": "off"}}
    assert changed_resume_field(old, new, RESUME_FIXED, free_fields=RESUME_FREE_FIELDS) == ("teacher.fast", None, "off")
    assert changed_resume_field(old, new, RESUME_FIXED, RESUME_FREE, RESUME_FREE_FIELDS) is None
    new["teacher"]["spec"] = "u.pth"
    assert changed_resume_field(old, new, RESUME_FIXED, RESUME_FREE, RESUME_FREE_FIELDS)[0] == "teacher.spec"


@pytest.mark.parametrize(
    ("setting", "env", "want"),
    [
        ("auto", None, "fast-float32-onednn"),
        ("off", None, "eager"),
        ("auto", "0", "eager"),
        ("bfloat16", None, "fast-bfloat16"),
    ],
)
def test_the_teacher_runs_on_the_path_its_setting_picks(
    images, tmp_path, monkeypatch, caplog, capsys, setting, env, want
):
    """The frozen teacher's forwards (heads warm-up: clean, masked and local views; each distillation step: the
    global crops) go through the fast path unless turned off; the run says which path it used."""
    import logging

    from geodino.models.frozen import FastViT

    if env is not None:
        monkeypatch.setenv("GEODINO_FAST", env)
    calls: list[tuple[int, bool]] = []
    real = FastViT._features

    def counting(self, x, masks):  # type: ignore[no-untyped-def]
        calls.append((x.shape[-1], masks is not None))
        return real(self, x, masks)

    monkeypatch.setattr(FastViT, "_features", counting)
    with caplog.at_level(logging.INFO, logger="geodino"):
        student = "students=[{name: t, arch: vit_tiny, drop_path_rate: 0.0, overrides: {depth: 1}}]"
        distill(_cfg(images, tmp_path / "run", f"teacher.fast={setting}", student))
    said = [r.getMessage() for r in caplog.records if "inference path" in r.getMessage()]
    assert len(said) == 1 and said[0].endswith(f"inference path {want}"), said
    assert f"geodino: teacher inference path {want} (" in capsys.readouterr().err  # on the console too
    if want == "eager":
        assert calls == []
    else:  # 2 warm-up steps x (globals, masked globals, locals), then 2 steps x globals
        assert calls == [(32, False), (32, True), (16, False)] * 2 + [(32, False)] * 2


def test_a_resumed_run_keeps_the_teacher_path_its_warm_up_chose(images, tmp_path, monkeypatch, caplog) -> None:
    """The heads warm-up's forwards count towards the teacher's compile; a resume skips the warm-up (its heads are
    saved) and must still compute as the first run did, or it is not bit-identical to an uninterrupted run."""
    import logging

    import geodino.inference as inference
    import geodino.models.fast_choice as fast_choice

    monkeypatch.setattr(fast_choice, "_compiler_available", lambda device: True)
    monkeypatch.setattr(torch, "compile", lambda fn, **kw: fn)  # the decision is under test, not inductor
    monkeypatch.setattr(inference, "image_equivalents", lambda n, h, w: n)  # count images as they come
    # steps: 2 x 4 images x 2 global crops = 16; warm-up: 2 x (4 x 2 x 2 views + 4 x 2 locals at a quarter) = 36
    monkeypatch.setattr(inference, "compile_min_images", lambda *a: 30)
    student = "students=[{name: t, arch: vit_tiny, drop_path_rate: 0.0, overrides: {depth: 1}}]"
    said = []
    for _ in range(2):  # the run, then its resume (heads from teacher.heads.pth, no warm-up)
        caplog.clear()
        with caplog.at_level(logging.INFO, logger="geodino"):
            distill(_cfg(images, tmp_path / "run", student))
        said += [r.getMessage().rsplit(" ", 1)[-1] for r in caplog.records if "inference path" in r.getMessage()]
    assert said == ["fast-float32-onednn-compiled", "fast-float32-onednn-compiled"]
    assert "resumed from" in caplog.text


def test_a_bad_env_mode_or_a_timm_teacher_fails_before_the_run_folder_is_made(images, tmp_path, monkeypatch) -> None:
    """GEODINO_FAST=bogus failed only after the teacher was loaded, leaving config.yaml behind; a timm teacher
    (it has forward_features) ended in an AttributeError traceback."""
    monkeypatch.setenv("GEODINO_FAST", "bogus")
    with pytest.raises(ConfigError, match=r"^GEODINO_FAST='bogus' is not a fast-path mode; use one of auto, off"):
        distill(_cfg(images, tmp_path / "env"))
    assert not (tmp_path / "env").exists()
    monkeypatch.delenv("GEODINO_FAST")
    with pytest.raises(ConfigError, match=r"teacher.spec='timm:vit_tiny_patch16_224\?img_size=32' is a timm model"):
        distill(_cfg(images, tmp_path / "timm", "teacher.spec='timm:vit_tiny_patch16_224?img_size=32'"))


def test_the_fast_teacher_keeps_no_part_of_the_eager_teacher_alive() -> None:
    """The eager teacher is dropped once its weights are prepared; the fast path held its patch embedding (and its
    weights) through a bound input check."""
    import gc
    import weakref

    from geodino.models import build_model
    from geodino.models.frozen import FastPath, FastViT

    eager = build_model("vit_tiny", patch_size=8, depth=1)
    refs = [weakref.ref(eager), weakref.ref(eager.patch_embed), weakref.ref(eager.patch_embed.proj.weight)]
    fast = FastViT(eager, FastPath(True, "float32"))
    del eager
    gc.collect()
    assert [r() for r in refs] == [None, None, None]
    with pytest.raises(InputError, match="input has 4 bands but the backbone expects 3"):
        fast.forward_features(torch.zeros(1, 4, 16, 16))
    with pytest.raises(InputError, match="image size 12x16 is not a multiple of the patch size 8"):
        fast.forward_features(torch.zeros(1, 3, 12, 16))


def test_the_fast_teacher_gives_the_eager_teachers_targets(images) -> None:
    """The distillation targets (Sinkhorn-Knopp CLS and patch targets) of the fast float32 teacher equal the eager
    teacher's within the path's tolerance."""
    from geodino.backbones import load_backbone
    from geodino.models import build_model
    from geodino.models.frozen import FastPath, FastViT
    from geodino.models.heads import DINOHead
    from geodino.train.distill_arch import DistillMetaArch, DistillStudent

    teacher = load_backbone(TEACHER).model
    with torch.no_grad():
        for name, p in teacher.named_parameters():  # trained-like: every folded term matters
            if name.endswith(("gamma", "bias")):
                p.add_(torch.randn_like(p) * 0.3)
    torch.manual_seed(0)
    heads = DINOHead(teacher.embed_dim, 64, 32, 16), DINOHead(teacher.embed_dim, 64, 32, 16)
    with torch.no_grad():  # prototype scores of order 1 (a fresh head's are ~0.02): the targets are not flat
        for h in heads:
            for p in h.last_layer.parameters():
                p.mul_(50)
    student = DistillStudent(build_model("vit_tiny", patch_size=8, depth=1), *heads)
    g = torch.randn(6, 3, 32, 32)
    idx = torch.tensor([0, 5, 17, 40])
    out = {}
    for name, backbone in (("eager", teacher), ("fast", FastViT(teacher, FastPath(True, "float32")))):
        arch = DistillMetaArch(backbone, *heads, {"s": student}, n_global_crops=2)
        out[name] = arch.teacher_targets(g, idx, 4, teacher_temp=0.07)
    torch.testing.assert_close(out["fast"]["cls_logits"], out["eager"]["cls_logits"], rtol=0, atol=1e-4)
    for key in ("cls_centered", "patch_centered"):  # probabilities ~1/64: relative
        torch.testing.assert_close(out["fast"][key], out["eager"][key], rtol=1e-3, atol=1e-7, msg=key)
    assert out["eager"]["cls_logits"].std() > 0.3  # the comparison is between non-trivial outputs
    assert out["eager"]["cls_centered"].std() > 0.1 / 64  # targets that are not uniform


def test_the_teacher_compiles_only_when_the_run_repays_it(images, tmp_path, monkeypatch) -> None:
    """Compiling the teacher costs a warm-up per crop shape: it is chosen by the job-size rule of `embed` and probes,
    counting the distillation steps' global crops and, when heads are warmed up, the warm-up's views too."""
    import geodino.models.fast_choice as fast_choice
    from geodino.inference import compile_min_images
    from geodino.train.distill.build import teacher_path

    monkeypatch.setattr(fast_choice, "_compiler_available", lambda device: True)
    need = compile_min_images("cpu", "float32", (224, 224))
    cpu = torch.device("cpu")
    cfg = _cfg(images, tmp_path, "crops={global_size: 224, local_size: 96, n_local: 8}", "teacher.head_warmup_steps=0")
    steps = need // (16 * 2)  # images per step: 16 per rank x 2 global crops
    cfg.train.max_steps = steps - 1
    short = teacher_path(cfg, cpu, 16)
    assert not short.compile and "too small" in short.reason
    cfg.train.max_steps = steps + 1
    assert teacher_path(cfg, cpu, 16).compile
    cfg.train.max_steps, cfg.teacher.head_warmup_steps = 1, steps // 2 + 1  # each warm-up step: 2 global views
    assert not teacher_path(cfg, cpu, 16).compile and teacher_path(cfg, cpu, 16, 16).compile
    # one image per step and process (as many processes as images), two per warm-up step: each counted at its own
    cfg.train.max_steps, cfg.teacher.head_warmup_steps = need // 2 - 20, 1  # 1,960 step images + ~11 warm-up
    assert not teacher_path(cfg, cpu, 1, 2).compile and teacher_path(cfg, cpu, 2, 2).compile
    cfg.teacher.fast = "off"
    assert not teacher_path(cfg, cpu, 16, 16).enabled


def test_a_distill_folder_in_use_is_refused(images, tmp_path) -> None:
    import fcntl

    out = tmp_path / "run"
    out.mkdir()
    with open(out / ".geodino.lock", "w") as other:
        other.write("pid 4242")
        other.flush()
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InputError, match=r"output_dir .*run is in use by another run \(pid 4242\)"):
            distill(_cfg(images, out))
    assert not (out / "config.yaml").exists()


def test_teacher_heads_file_is_reused_and_prototype_mismatch_fails(run, images, tmp_path) -> None:
    out, _ = run
    cfg = _cfg(
        images,
        tmp_path / "r",
        f"teacher.heads={out / 'teacher.heads.pth'}",
        "students=[{name: a, arch: vit_tiny, dino_head_n_prototypes: 32}]",
    )
    with pytest.raises(ConfigError, match=r"students\[0\] \(a\).dino_head_n_prototypes=32 differs from the teacher"):
        distill(cfg)
    assert not (tmp_path / "r" / "teacher.heads.pth").exists()  # the given heads were used, no warm-up


def test_patch_size_mismatch_fails_before_any_work(images, tmp_path) -> None:
    cfg = _cfg(images, tmp_path / "r", "students=[{name: a, arch: vit_tiny, patch_size: 16}]")
    with pytest.raises(ConfigError, match=r"students\[0\] \(a\).patch_size=16 differs from the teacher's patch size 8"):
        distill(cfg)
    assert not (tmp_path / "r" / "teacher.heads.pth").exists()


def test_a_distill_in_this_process_leaves_its_folder_unlocked(run, images, tmp_path) -> None:
    """A notebook runs distill() and keeps going: a finished or failed run leaves no lock file and no lock held
    (the lock was held for the life of the process)."""
    from geodino.run_lock import lock_run_folder, release_run_folder

    out, _ = run
    assert not (out / ".geodino.lock").exists()
    folder = tmp_path / "kept"
    folder.mkdir()
    with pytest.raises(ConfigError, match="patch_size=16 differs"):  # fails after it took the folder
        distill(_cfg(images, folder, "students=[{name: a, arch: vit_tiny, patch_size: 16}]"))
    assert not (folder / ".geodino.lock").exists()
    lock_run_folder(folder)  # taken again for real (no stale entry for the folder in this process)
    assert (folder / ".geodino.lock").read_text().startswith("pid ")
    release_run_folder(folder)


def test_missing_files_fail_with_one_line(images, tmp_path) -> None:
    cfg = _cfg(
        images,
        tmp_path / "r",
        f"students=[{{name: a, arch: vit_tiny, init_from: {tmp_path / 'no.pth'}}}]",
        "teacher.head_warmup_steps=1",
    )
    with pytest.raises(CheckpointError, match=r"students\[0\].init_from file .*no.pth not found") as err:
        distill(cfg)
    assert "\n" not in str(err.value)
    with pytest.raises(CheckpointError, match=r"teacher.heads file .*gone.pth not found"):
        distill(_cfg(images, tmp_path / "s", f"teacher.heads={tmp_path / 'gone.pth'}"))


def test_student_init_from_another_architecture_fails(run, images, tmp_path) -> None:
    out, exports = run
    cfg = _cfg(
        images,
        tmp_path / "r",
        f"teacher.heads={out / 'teacher.heads.pth'}",
        f"students=[{{name: a, arch: vit_tiny, overrides: {{depth: 2}}, init_from: {exports['small']}}}]",
    )
    # the export records its build (vit_small, depth 1): the message names what differs and the distill keys to set
    expected = (r"students\[0\]\.init_from .* was trained with arch='vit_small', embed_dim=384, depth=1, .* but this "
                r"config builds arch='vit_tiny', embed_dim=192, depth=2, .*; set students\[0\]\.arch=vit_small, "
                r"students\[0\]\.overrides\.embed_dim=384, students\[0\]\.overrides\.depth=1, ")  # fmt: skip
    with pytest.raises(CheckpointError, match=expected) as err:
        distill(cfg)
    assert "ssl.student" not in str(err.value) and "damaged" not in str(err.value)  # the distill keys, not damage


@pytest.mark.parametrize(
    ("override", "message"),
    [
        ("students=[{name: a, arch: vit_tiny}, {name: a, arch: vit_small}]", "duplicate names"),
        ("students=[{name: a, arch: vit_smal}]", r"students\[0\].arch='vit_smal' is not a known architecture; did"),
        ("students=[]", "students is empty"),
        ("crops.gram=true", "distillation has no Gram term"),
        ("train.export=last", "train.export='last' must be 'ema' or 'student'"),
        ("teacher.fast=fastest", "teacher.fast='fastest' is not one of auto, off, float32"),
        (
            "ibot.mask_sample_probability=0.3",
            r"^ibot.mask_sample_probability=0.3 is not read by distillation, whose iBOT positions come from "
            r"crops.mask_\*; set crops.mask_probability=0.3 instead",
        ),
        (
            "ibot.mask_ratio_min_max=[0.2, 0.6]",
            r"^ibot.mask_ratio_min_max=\[0.2, 0.6\] is not read by distillation, .*; set crops.mask_ratio=\[0.2, 0.6\] "
            r"instead",
        ),
        (
            "dino.centering=centering",
            r"^dino.centering='centering' is not read by distillation: its teacher targets are always Sinkhorn-Knopp",
        ),
        ("ibot.center_momentum=0.5", r"^ibot.center_momentum=0.5 is not read by distillation"),
        ("dino.head_last_layer=weight_norm", r"^dino.head_last_layer='weight_norm' is not read by distillation"),
        ("koleo.topk=2", r"^koleo.topk > 1 needs koleo.distributed=true"),
        ("koleo.group_size=2", r"^koleo.group_size=2 needs koleo.distributed=true"),
        # numpy's ValueError and a traceback at the first batch, before
        ("train.seed=-1", r"^train.seed=-1 must be a whole number from 0 to 4294967295$"),
        ("train.num_workers=-2", r"^train.num_workers=-2 must be >= 0$"),
    ],
)
def test_config_errors(images, tmp_path, override, message) -> None:
    with pytest.raises(ConfigError, match=message):
        _cfg(images, tmp_path, override)


def test_pretrainings_ibot_mask_keys_are_refused_and_free_on_resume(images, tmp_path) -> None:
    """`ibot.mask_sample_probability` / `ibot.mask_ratio_min_max` (pretraining's keys, listed by `distill --help`)
    changed nothing in distillation, whose masks come from `crops.mask_*`; at their defaults (as every config.yaml
    lists them) a config loads, and a run that had set them resumes once they are taken out."""
    from geodino.train.checkpointing import changed_resume_field
    from geodino.train.distill.export import RESUME_FIXED, RESUME_FREE, RESUME_FREE_FIELDS

    cfg = _cfg(images, tmp_path, "ibot.mask_sample_probability=0.5", "ibot.mask_ratio_min_max=[0.1, 0.5]")
    assert cfg.ibot.mask_sample_probability == 0.5
    with pytest.raises(ConfigError, match=r"ibot.mask_sample_probability=1.0 is not read"):
        _cfg(images, tmp_path, "ibot.mask_sample_probability=1")
    old = {"ibot": {"loss_weight": 1.0, "mask_sample_probability": 0.3, "mask_ratio_min_max": [0.2, 0.6]}}
    new = {"ibot": {"loss_weight": 1.0, "mask_sample_probability": 0.5, "mask_ratio_min_max": [0.1, 0.5]}}
    assert changed_resume_field(old, new, RESUME_FIXED, RESUME_FREE, RESUME_FREE_FIELDS) is None
    new["ibot"]["loss_weight"] = 0.5
    assert changed_resume_field(old, new, RESUME_FIXED, RESUME_FREE, RESUME_FREE_FIELDS)[0] == "ibot.loss_weight"


def test_ibot_and_koleo_options_are_read(run, images, tmp_path) -> None:
    """`ibot.student_temp`, `ibot.sinkhorn_iterations` and `koleo.distributed/group_size/topk` reach the losses
    (the iBOT term used the DINO term's values and KoLeo always ran over the whole per-process batch), and they
    change the step's loss; the defaults build what they built before."""
    from geodino.losses.koleo import KoLeoLoss, KoLeoLossDistributed
    from geodino.train.distill.build import make_batches
    from geodino.train.distill.loop import setup, train_step

    heads = f"teacher.heads={run[0] / 'teacher.heads.pth'}"
    base = setup(_cfg(images, tmp_path / "a", heads))
    assert isinstance(base.arch.koleo_loss, KoLeoLoss) and base.arch.ibot_loss.student_temp == 0.1
    tuned = setup(
        _cfg(
            images,
            tmp_path / "b",
            heads,
            "ibot.student_temp=0.2",
            "ibot.sinkhorn_iterations=5",
            "koleo={distributed: true, group_size: 2, topk: 1}",
        )
    )
    arch = tuned.arch
    assert arch.ibot_loss.student_temp == 0.2 and arch.ibot_loss.sinkhorn_iterations == 5
    assert arch.dino_loss.student_temp == 0.1 and arch.dino_loss.sinkhorn_iterations == 3  # dino.* unchanged
    assert isinstance(arch.koleo_loss, KoLeoLossDistributed) and arch.koleo_loss.group_size == 2
    rows = [train_step(r, 0, next(make_batches(r.cfg, r.patch, 0, 0, 1, r.layout.data_batch))) for r in (base, tuned)]
    for key in ("ibot", "koleo"):
        a, b = (float(row[f"tiny/{key}"]) for row in rows)
        assert abs(a - b) > 1e-4, (key, a, b)
    a, b = (float(row["tiny/dino_global"]) for row in rows)  # same weights, batch and DINO options
    assert a == pytest.approx(b, abs=1e-6)


def test_koleo_groups_that_do_not_tile_the_batch_are_refused_before_any_write(images, tmp_path) -> None:
    cfg = _cfg(images, tmp_path / "run", "koleo={distributed: true, group_size: 3}")
    with pytest.raises(ConfigError, match=r"^koleo.group_size=3 does not tile the batches: 4 images per process on 1 "):
        distill(cfg)
    assert not (tmp_path / "run").exists()


def _refusals(heads: Path, export: Path) -> dict[str, tuple[list[str], str]]:
    """Starts refused after the teacher is loaded: {case: (extra overrides, the start of the one-line error)}."""
    given = f"teacher.heads={heads}"
    return {
        "no heads, no warm-up": (["teacher.head_warmup_steps=0"], f"teacher {TEACHER} has no DINO/iBOT heads and "),
        "init_from of another architecture": (
            [given, f"students=[{{name: a, arch: vit_tiny, overrides: {{depth: 2}}, init_from: {export}}}]"],
            f"students[0].init_from {export} was trained with arch='vit_small', embed_dim=384, depth=1, ",
        ),
        "prototypes (warm-up)": (
            ["students=[{name: a, arch: vit_tiny, dino_head_n_prototypes: 32}]"],
            "students[0] (a).dino_head_n_prototypes=32 differs from the teacher head's 64 prototypes",
        ),
        "prototypes (heads file)": (
            [given, "students=[{name: a, arch: vit_tiny, ibot_head_n_prototypes: 32}]"],
            "students[0] (a).ibot_head_n_prototypes=32 differs from the teacher head's 64 prototypes",
        ),
        "build option": (
            [given, "students=[{name: a, arch: vit_tiny, overrides: {deptth: 1}}]"],
            "students[0].overrides (a): 1 unknown backbone option for vit_tiny: deptth (did you mean depth?)",
        ),
        "missing data (no warm-up)": (
            [given, "data.sources=[{type: images, paths: [/no/such/dir]}]"],
            "image path /no/such/dir does not exist",
        ),
        "data bands (no warm-up)": (
            [given, "data.sources=[{type: synthetic, sensor: sentinel2_l2a, tile_size: 40}]"],
            f"the data has 12 bands per image but the teacher {TEACHER} takes 3; ",
        ),
    }


_REFUSED = [
    "no heads, no warm-up",
    "init_from of another architecture",
    "prototypes (warm-up)",
    "prototypes (heads file)",
    "build option",
    "missing data (no warm-up)",
    "data bands (no warm-up)",
]


@pytest.mark.parametrize("case", _REFUSED)
def test_a_refused_start_leaves_no_output_dir(run, images, tmp_path, capsys, case) -> None:
    """A start refused after the teacher was loaded (a teacher without heads and head_warmup_steps=0, a student's
    init_from of another architecture, its prototype counts, its build options, unreadable data) left a new
    output_dir holding config.yaml and schedules.png, some after a whole heads warm-up. Each is one line, exit code
    2, and leaves no output_dir (through the CLI and in Python); a folder that existed keeps what it held."""
    from geodino.cli import main

    out, exports = run
    refusals = _refusals(out / "teacher.heads.pth", exports["small"])
    assert sorted(refusals) == sorted(_REFUSED)
    extra, message = refusals[case]
    new = tmp_path / "runs" / "new"  # the CLI removes the folders it made for a failed command
    code = main(["distill", *_overrides(images, new, *extra)])
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and err[-1].startswith(f"geodino: error: {message}"), err
    assert not (tmp_path / "runs").exists(), [p.name for p in new.glob("*")]
    new = tmp_path / "new"
    with pytest.raises((ConfigError, CheckpointError, InputError), match=f"^{re.escape(message)}"):
        distill(_cfg(images, new, *extra))
    assert not new.exists(), [p.name for p in new.glob("*")]
    kept = tmp_path / "kept"  # a folder that existed: kept, with its content and nothing of the refused run
    kept.mkdir()
    (kept / "notes.txt").write_text("mine")
    assert main(["distill", *_overrides(images, kept, *extra)]) == 2
    assert sorted(p.name for p in kept.iterdir()) == ["notes.txt"]


def test_cli_exit_code_2_with_one_line(images, tmp_path, capsys) -> None:
    from geodino.cli import main

    base = [
        f"output_dir={tmp_path / 'r'}",
        f"teacher.spec={TEACHER}",
        f"data.sources=[{{type: images, paths: [{images}]}}]",
    ]
    code = main(["distill", *base, "students=[{name: a, arch: vit_tiny, patch_size: 16}]"])
    err = capsys.readouterr().err.strip()
    assert code == 2
    assert err.startswith("geodino: error: students[0] (a).patch_size=16 differs") and "\n" not in err
    code = main(
        [
            "distill",
            *base,
            f"students=[{{name: a, arch: vit_tiny, init_from: {tmp_path / 'x.pth'}}}]",
            "teacher.heads=" + str(tmp_path / "none.pth"),
        ]
    )
    assert code == 2 and "teacher.heads file" in capsys.readouterr().err


_DDP_SCRIPT = """
import os, sys
from geodino.config import load_config
from geodino.train.distill import DistillConfig, distill
images, out = sys.argv[1], sys.argv[2]
H = "{head_n_prototypes: 64, head_hidden_dim: 32, head_bottleneck_dim: 16}"
cfg = load_config(DistillConfig, None, [
    f"output_dir={out}", "teacher.spec=arch:vit_tiny?seed=0&patch_size=8&depth=2&n_storage_tokens=1",
    "teacher.head_warmup_steps=2", f"dino={H}", f"ibot={H}",
    f"data.sources=[{{type: images, paths: [{images}], sensor: imagenet}}]",
    "crops={global_size: 32, local_size: 16, n_local: 2, rot90: false}",
    "students=[{name: tiny, arch: vit_tiny, ranks: [0, 1], overrides: {depth: 1}},"
    " {name: small, arch: vit_small, ranks: [1, 3], overrides: {depth: 1}}]",
    "train.max_steps=2", "train.global_batch_size=4", "train.num_workers=0", "train.device=cpu",
    "train.log_every_n_steps=1", "train.progress_bar=false"])
sys.stdout.write(f"RESULT {os.environ['RANK']} {sorted(distill(cfg))}\\n")  # one write per record
sys.stdout.flush()
import torch.distributed as dist
dist.barrier()
dist.destroy_process_group()
sys.stdout.flush()
os._exit(0)  # gloo worker threads can abort the interpreter at exit (see geodino.train.commands)
"""


@pytest.mark.slow
def test_three_processes_two_students_in_subgroups(images, tmp_path) -> None:
    """torchrun, gloo: student `tiny` on rank 0, `small` on ranks 1-2 (DDP in its subgroup); shared heads warm-up."""
    import os
    import subprocess
    import sys

    from geodino.models import build_model

    script = tmp_path / "run.py"
    script.write_text(_DDP_SCRIPT)
    out = tmp_path / "ddp"
    # --standalone: torchrun picks a free port itself (no race with other processes for a pre-chosen port)
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "3"]
    cmd += [str(script), str(images), str(out)]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    # the three ranks share one stdout pipe, so their lines can interleave: match records, not lines
    results = sorted(re.findall(r"RESULT \d \[[^\]]*\]", proc.stdout))
    assert results == ["RESULT 0 ['tiny']", "RESULT 1 ['small']", "RESULT 2 []"]  # subgroup rank 0 exports
    for name in ("tiny", "small"):
        heads = torch.load(out / name / f"{name}.heads.pth", weights_only=True)
        build_model(**heads["backbone"]).load_state_dict(torch.load(out / name / f"{name}.pth", weights_only=True))
        rows = list(csv.DictReader((out / name / "log.csv").open()))
        assert [int(float(r["step"])) for r in rows] == [0, 1]
        assert (out / name / "checkpoints" / "step_00000002.ckpt").is_file()
    assert (out / "teacher.heads.pth").is_file()


def test_log_rows_are_read_on_the_host_only_on_logging_steps(images, tmp_path, monkeypatch) -> None:
    """The step keeps losses and norms on the device; the loop reads a row (one `host_floats` copy) only on the
    steps it logs, and the logged row holds plain numbers, gradient norms included."""
    import geodino.train.distill.loop as loop
    import geodino.train.distill.step as step_module

    seen: list[float] = []
    real = loop.host_floats

    def counting(row):  # type: ignore[no-untyped-def]
        seen.append(float(row["step"]))
        return real(row)

    monkeypatch.setattr(loop, "host_floats", counting)
    monkeypatch.setattr(step_module, "host_floats", counting)  # the step reads a row only for its NaN line
    out = tmp_path / "run"
    distill(_cfg(images, out, "train.max_steps=4", "train.log_every_n_steps=3", "train.checkpoint_every_n_steps=4"))
    assert seen == [0.0, 3.0]  # step 0 and the last step; steps 1 and 2 read nothing but the NaN guard
    rows = list(csv.DictReader((out / "log.csv").open()))
    assert [int(float(r["step"])) for r in rows] == [0, 3]
    assert float(rows[-1]["tiny/grad_norm/backbone"]) > 0 and float(rows[-1]["small/loss"]) > 0


def test_activation_checkpointing_gives_the_same_students(images, tmp_path, monkeypatch) -> None:
    """`train.activation_checkpointing=full` checkpoints the students' blocks (not their EMA copies or the
    teacher) and ends with the students of the run without it (drop path on, so its draws are replayed)."""
    import torch.utils.checkpoint as tuc

    calls = [0]
    real = tuc.checkpoint

    def counting(*args, **kwargs):
        calls[0] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(tuc, "checkpoint", counting)
    students = "students=[{name: tiny, arch: vit_tiny, drop_path_rate: 0.2, overrides: {depth: 2}}]"
    states = {}
    for mode in ("off", "full"):
        before = calls[0]
        distill(_cfg(images, tmp_path / mode, students, f"train.activation_checkpointing={mode}"))
        states[mode] = torch.load(tmp_path / mode / "checkpoints" / "step_00000002.ckpt", weights_only=True)
        states[mode + "_calls"] = calls[0] - before
    assert states["off_calls"] == 0 and states["full_calls"] == 2 * 2  # 2 steps x 2 student blocks
    for part in ("students", "students_ema"):
        a, b = states["off"][part]["tiny"], states["full"][part]["tiny"]
        assert a.keys() == b.keys()
        for k in a:
            torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=f"{part}.{k}")
