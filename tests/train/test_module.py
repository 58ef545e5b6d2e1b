"""The LightningModule plumbing: schedules applied per step, EMA, last-layer freeze, head warm-up, NaN guard."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from geodino.errors import TrainingError
from geodino.train.module import CheckpointConfig, SSLModule, TrainerConfig, build_trainer
from tests.train.standin import StandInArch, loader_factory, schedules


def fit(tmp: Path, arch: StandInArch, max_steps: int, every: int = 100, ckpt_path=None, trainer_kw=None, **module_kw):
    torch.manual_seed(0)
    module = SSLModule(
        arch, schedules, loader_factory=loader_factory(), checkpoint_dir=tmp / "checkpoints", **module_kw
    )
    kw = {"accelerator": "cpu", "precision": "32-true", "loggers": [], "progress_bar": False, **(trainer_kw or {})}
    tcfg = TrainerConfig(max_steps=max_steps, **kw)
    trainer, cb = build_trainer(tcfg, CheckpointConfig(every_n_steps=every, keep_last=2), tmp)
    trainer.fit(module, ckpt_path=ckpt_path)
    return module, trainer, cb


def test_steps_ema_and_last_layer_freeze(tmp_path):
    torch.manual_seed(0)
    arch = StandInArch()
    init = {k: v.clone() for k, v in arch.state_dict().items()}
    _, trainer, _ = fit(tmp_path, arch, max_steps=2, clip_grad=1.0)
    assert trainer.global_step == 2
    sd = arch.state_dict()
    # last layer lr is 0 for 2 steps (schedules) -> the prototypes did not move; the MLP did
    assert torch.equal(sd["student.dino_head.last_layer.weight"], init["student.dino_head.last_layer.weight"])
    assert not torch.equal(sd["student.dino_head.mlp.0.weight"], init["student.dino_head.mlp.0.weight"])
    # EMA with momentum 0.9 after each step: teacher = 0.9^2 t0 + 0.1*0.9 s1 + 0.1 s2; check it moved toward the
    # student and still differs from it
    w_s, w_t, w_0 = (
        sd["student.backbone.blocks.0.attn.qkv.weight"],
        sd["teacher.backbone.blocks.0.attn.qkv.weight"],
        init["teacher.backbone.blocks.0.attn.qkv.weight"],
    )
    assert not torch.equal(w_t, w_0) and not torch.equal(w_t, w_s)
    assert (w_t - w_s).norm() < (w_0 - w_s).norm()
    assert arch.refreshes == [0, 1]  # Gram refresh hook called once per step with the iteration


def test_ema_matches_formula(tmp_path):
    torch.manual_seed(0)
    arch = StandInArch()
    t0 = arch.teacher["backbone"].norm.weight.detach().clone()
    seen = []
    real = arch.update_teacher

    def spy(m):
        seen.append(arch.student["backbone"].norm.weight.detach().clone())
        real(m)

    arch.update_teacher = spy
    fit(tmp_path, arch, max_steps=2)
    expected = 0.9 * (0.9 * t0 + 0.1 * seen[0]) + 0.1 * seen[1]
    torch.testing.assert_close(arch.teacher["backbone"].norm.weight, expected, rtol=0, atol=1e-6)


def test_head_warmup_freezes_backbone(tmp_path):
    torch.manual_seed(0)
    arch = StandInArch()
    b0 = {k: v.clone() for k, v in arch.student["backbone"].state_dict().items()}
    h0 = arch.student["dino_head"].mlp[0].weight.clone()
    fit(tmp_path, arch, max_steps=2, head_warmup_steps=2)
    for k, v in arch.student["backbone"].state_dict().items():
        assert torch.equal(v, b0[k]), k
    assert not torch.equal(arch.student["dino_head"].mlp[0].weight, h0)


def test_nan_stops_and_keeps_last_good_checkpoint(tmp_path):
    torch.manual_seed(0)
    arch = StandInArch(nan_at=3)
    with pytest.raises(
        TrainingError,
        match=r"loss is nan at step 3 .*dino_global_loss=.*last good checkpoint is .*step_00000002\.ckpt; a resume "
        r"keeps the recipe .* new output_dir with init_from=.*step_00000002\.ckpt and init_student_from=student, with "
        r"a lower ssl\.schedules\.lr\.peak or ssl\.optim\.clip_grad",
    ):
        fit(tmp_path, arch, max_steps=6, every=2)
    ck = tmp_path / "checkpoints"
    assert sorted(os.listdir(ck)) == ["last.ckpt", "step_00000002.ckpt"]
    assert os.readlink(ck / "last.ckpt") == "step_00000002.ckpt"
    c = torch.load(ck / "last.ckpt", weights_only=True)
    assert c["global_step"] == 2 and c["geodino"]["step"] == 2
    assert all(torch.isfinite(v).all() for v in c["state_dict"].values() if v.is_floating_point())


def test_trainer_console_drops_lightning_tips_and_keeps_its_messages(tmp_path):
    """Lightning's litlogger advert and the checkpoint 'weights_only was not set' line are noise on every run;
    its real messages (the stop reason) stay. Fails without `_quiet_lightning` / `weights_only=False`."""
    import io
    import logging

    from lightning.pytorch.utilities.rank_zero import rank_zero_info

    console = logging.StreamHandler(io.StringIO())  # stands in for Lightning's stderr handler
    lightning_log = logging.getLogger("lightning.pytorch")
    level = lightning_log.level  # Lightning's own INFO level, whatever an earlier in-process run set it to
    lightning_log.addHandler(console)
    lightning_log.setLevel(logging.INFO)
    try:
        fit(tmp_path, StandInArch(), max_steps=2, every=1)
        rank_zero_info("💡 Tip: install something")
        rank_zero_info("a real message")
    finally:
        lightning_log.removeHandler(console)
        lightning_log.setLevel(level)
    err = console.stream.getvalue()
    assert "`max_steps=2` reached" in err and "a real message" in err
    assert "Tip" not in err and "weights_only" not in err
    assert sorted(p.name for p in (tmp_path / "checkpoints").glob("step_*.ckpt")) == [
        "step_00000001.ckpt",
        "step_00000002.ckpt",
    ]


def _first_norms(tmp: Path, plugin=None) -> dict[str, float]:
    """The pre-clip gradient norms of the first step, as `_clip` measures them (clip_grad 1e-3: clipping on)."""
    torch.manual_seed(0)
    module = SSLModule(
        StandInArch(), schedules, loader_factory=loader_factory(), checkpoint_dir=tmp / "checkpoints", clip_grad=1e-3
    )
    seen: list[dict[str, float]] = []
    clip = module._clip
    module._clip = lambda: seen.append({k: float(v) for k, v in clip().items()}) or {}  # type: ignore[method-assign]
    tcfg = TrainerConfig(max_steps=1, accelerator="cpu", precision="32-true", loggers=[], progress_bar=False)
    trainer, _ = build_trainer(tcfg, CheckpointConfig(every_n_steps=100, keep_last=2), tmp)
    if plugin is not None:  # 16-mixed as on a GPU without bf16: autocast float16 and a GradScaler
        trainer.strategy.precision_plugin = plugin
    trainer.fit(module)
    return seen[0]


def test_16_mixed_clips_the_unscaled_gradients(tmp_path):
    """With 16-mixed the loss (so every gradient) is multiplied by the GradScaler's scale until Lightning unscales
    it (inside opt.step(); for the fused AdamW, inside its kernel). Clipping before that (the old code) measured
    norms 2^10 times too large here and clipped the true gradients to clip_grad / 2^10; the hook clips unscaled
    ones."""
    from lightning.pytorch.plugins.precision import MixedPrecision

    plugin = MixedPrecision("16-mixed", "cpu", scaler=torch.amp.GradScaler("cpu", init_scale=2.0**10))
    full = _first_norms(tmp_path / "fp32")
    mixed = _first_norms(tmp_path / "fp16", plugin)
    assert set(mixed) == set(full) and full
    for name in full:  # float16 autocast changes the numbers a little, not by 2^10
        assert mixed[name] == pytest.approx(full[name], rel=0.05), name
