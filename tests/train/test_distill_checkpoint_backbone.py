"""A `geodino distill` checkpoint (`step_*.ckpt`, format `geodino-distill`) loads as a backbone: `FILE?which=NAME` is
student NAME's EMA (what the run exports), `FILE?which=NAME.raw` its raw weights, a bare FILE of a one-student
checkpoint that student, and `geodino info FILE?which=NAME` describes it. Every reader said the file "holds no ViT
backbone (no cls_token key among 8 entries)", `?which=students_ema.tiny` too, so a run stopped early could not be
probed or embedded from its checkpoint."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from geodino import cli
from geodino.backbones import load_backbone
from geodino.errors import CheckpointError
from geodino.models.info import describe
from geodino.train.distill import distill
from tests.train.test_distill import _cfg


@pytest.fixture(scope="module")
def run(images, tmp_path_factory) -> tuple[Path, dict[str, Path]]:
    """A 2-step, 2-student (tiny, small) run: its step-2 checkpoint and its exports (both of step 2)."""
    out = tmp_path_factory.mktemp("distill_ckpt") / "run"
    exports = distill(_cfg(images, out))
    return out / "checkpoints" / "step_00000002.ckpt", exports


def _features(spec: str, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    fb = load_backbone(spec)
    maps, cls = fb.features(fb.normalize(x), "last")
    return maps[0], cls[0]


def test_a_students_checkpoint_backbone_is_its_export(run) -> None:
    ckpt, exports = run
    x = torch.randn(2, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    for name, pth in exports.items():
        exported = _features(str(pth), x)
        for spec in (f"{ckpt}?which={name}", f"{ckpt}?which={name}.ema", f"{ckpt}?which=students_ema.{name}"):
            got = _features(spec, x)
            assert torch.equal(got[0], exported[0]) and torch.equal(got[1], exported[1]), spec
        a, b = load_backbone(f"{ckpt}?which={name}"), load_backbone(str(pth))
        assert a.model.config == b.model.config and a.normalization == b.normalization, name
        assert a.normalization is not None and "distillation data" in a.normalization["origin"]
        # the raw student: its own weights, not the EMA's (2 steps moved them)
        raw = load_backbone(f"{ckpt}?which={name}.raw").model.state_dict()
        saved = torch.load(ckpt, map_location="cpu", weights_only=True)["students"][name]
        assert all(torch.equal(v, saved[f"backbone.{k}"]) for k, v in raw.items() if not k.endswith("periods"))
        assert not torch.equal(_features(f"{ckpt}?which={name}.raw", x)[1], exported[1]), name


def test_a_bare_checkpoint_is_its_only_student_and_several_need_which(run, tmp_path) -> None:
    ckpt, exports = run
    with pytest.raises(CheckpointError) as exc:
        load_backbone(str(ckpt))
    msg = str(exc.value)
    assert "\n" not in msg and "2 students (tiny, small)" in msg and "which=tiny.raw" in msg, msg
    # a one-student checkpoint (a single-student run, or a subgroup's `<student>/checkpoints/`): no which needed
    obj = torch.load(ckpt, map_location="cpu", weights_only=True)
    for key in ("students", "students_ema", "backbones"):
        del obj[key]["small"]
    one = tmp_path / "step_00000002.ckpt"
    torch.save(obj, one)
    x = torch.randn(1, 3, 16, 24, generator=torch.Generator().manual_seed(1))
    got, want = _features(str(one), x), _features(str(exports["tiny"]), x)
    assert torch.equal(got[0], want[0]) and torch.equal(got[1], want[1])


def test_info_describes_the_student_which_names(run, capsys) -> None:
    ckpt, _ = run
    info = describe(f"{ckpt}?which=small")
    assert info["kind"] == "geodino-distill" and info["network"] == "student small (ema), step 2"
    assert info["embed_dim"] == 384 and info["depth"] == 1 and info["weights"].startswith("every key")
    assert describe(f"{ckpt}?which=tiny.raw")["network"] == "student tiny (raw), step 2"
    assert describe(f"{ckpt}?which=tiny")["embed_dim"] == 192
    assert cli.main(["info", f"{ckpt}?which=tiny"]) == 0
    out = capsys.readouterr().out
    assert "student tiny (ema), step 2" in out and "every key and shape fits" in out
    for which, said in (("teacher", "teacher.spec"), ("student", "tiny, small"), ("tiny.rawx", "tiny, small")):
        with pytest.raises(CheckpointError, match="names no student") as exc:
            describe(f"{ckpt}?which={which}")
        assert said in str(exc.value) and "\n" not in str(exc.value), which


def test_convert_takes_a_student_of_a_distill_checkpoint(run, tmp_path) -> None:
    """`geodino convert CKPT OUT --which NAME` writes what the export holds: its weights, config and normalisation."""
    ckpt, exports = run
    out = tmp_path / "small.pth"
    assert cli.main(["convert", str(ckpt), str(out), "--which", "small"]) == 0
    got, want = (torch.load(p, map_location="cpu", weights_only=True) for p in (out, exports["small"]))
    assert got.keys() == want.keys() and all(torch.equal(got[k], want[k]) for k in got)
    a, b = load_backbone(str(out)), load_backbone(str(exports["small"]))
    assert a.normalization == b.normalization and a.model.config == b.model.config
