"""SSLMetaArch: one full step on vit_tiny, the loss bookkeeping, the EMA teacher and stage initialisation."""

from __future__ import annotations

import pytest
import torch

from geodino.errors import CheckpointError, ConfigError, InputError
from geodino.losses import sinkhorn_knopp
from geodino.train.host import host_floats
from geodino.train.optim import apply_optim_schedule, build_optimizer
from geodino.train.ssl import SSLMetaArch
from tests.helpers import HostReads
from tests.train.ssl_fixtures import ssl_batch, tiny_cfg


@pytest.fixture(scope="module")
def arch() -> SSLMetaArch:
    torch.manual_seed(0)
    return SSLMetaArch(tiny_cfg(), total_iters=10, global_batch_size=4)


def test_structure_and_frozen_teacher(arch: SSLMetaArch) -> None:
    assert set(arch.student) == set(arch.teacher) == {"backbone", "dino_head", "ibot_head"}
    assert all(not p.requires_grad for p in arch.teacher.parameters())
    assert arch.gram_teacher is None
    arch.train()
    assert arch.student.training and not arch.teacher.training  # the teacher never leaves eval mode
    for k, v in arch.student.state_dict().items():
        assert torch.equal(v, arch.teacher.state_dict()[k])


def test_full_step_gradients_student_only_then_ema() -> None:
    torch.manual_seed(0)
    arch = SSLMetaArch(tiny_cfg(), total_iters=10, global_batch_size=4)
    opt = build_optimizer(arch.param_groups())
    teacher_before = {k: v.clone() for k, v in arch.teacher.state_dict().items()}
    student_before = {k: v.clone() for k, v in arch.student.state_dict().items()}
    loss, logs = arch(ssl_batch(), iteration=0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert all(p.grad is None for p in arch.teacher.parameters())
    grads = {n: p.grad for n, p in arch.student.named_parameters()}
    assert all(g is not None for g in grads.values()), [n for n, g in grads.items() if g is None]
    assert grads["backbone.blocks.0.attn.qkv.weight"].abs().sum() > 0
    assert grads["ibot_head.mlp.0.weight"].abs().sum() > 0
    s = arch.schedules.at(1)
    apply_optim_schedule(opt, s["lr"], s["weight_decay"], s["last_layer_lr"])
    opt.step()
    for k, v in arch.teacher.state_dict().items():
        assert torch.equal(v, teacher_before[k]), k  # unchanged until the EMA update
    m = 0.9
    arch.update_teacher(m)
    new_student = arch.student.state_dict()
    for k, v in arch.teacher.state_dict().items():
        if k.endswith("bias_mask") or k.endswith("periods"):
            continue
        expected = m * teacher_before[k] + (1 - m) * new_student[k]
        assert torch.allclose(v, expected, atol=1e-7), k
    moved = new_student["backbone.blocks.0.attn.qkv.weight"] - student_before["backbone.blocks.0.attn.qkv.weight"]
    assert moved.abs().sum() > 0
    assert {"dino_local_loss", "dino_global_loss", "koleo_loss", "ibot_loss"} <= set(logs)
    assert "monitor/teacher_entropy" in logs and "monitor/cls_patch_cosine" in logs


def test_step_reads_nothing_on_the_host_between_monitor_checks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Forward and backward of a step without a collapse check read no device value on the host (each read is a
    GPU sync): the iBOT masked count stays a device tensor. A monitor step brings its dozen statistics over in one
    `host_floats` copy, not one read each."""
    import geodino.train.ssl_monitoring as ssl_mod  # the monitor step reads its statistics there

    copies: list[list[str]] = []

    def counting(row):  # type: ignore[no-untyped-def]
        copies.append(list(row))
        return host_floats(row)

    monkeypatch.setattr(ssl_mod, "host_floats", counting)
    torch.manual_seed(0)
    arch = SSLMetaArch(tiny_cfg("monitor.every=10"), total_iters=10, global_batch_size=4)
    arch.train()
    first, second = ssl_batch(), ssl_batch()  # the loader's work, on the host (sample_masks reads its ratios there)
    with HostReads() as reads:
        loss, _ = arch(first, iteration=3)
        loss.backward()
    assert reads.n == 0 and copies == []
    with HostReads() as reads:
        _, logs = arch(second, iteration=9)  # a monitor step: 0, then 9, 19, ... (the logged steps)
    assert reads.n == 0 and len(copies) == 1
    assert {"teacher_entropy", "cls_patch_cosine", "layerscale_gamma", "ibot_teacher_entropy"} <= set(copies[0])
    assert type(logs["monitor/teacher_entropy"]) is float and type(logs["monitor/layerscale_gamma"]) is float


def test_total_uses_official_term_weights(arch: SSLMetaArch) -> None:
    # 2 global x 4 local crops: local terms 8, global cross-view terms 2 -> 8/10 and 2/10; KoLeo 0.1 x 2
    with torch.no_grad():
        loss, logs = arch(ssl_batch(n_local=4), iteration=5)
    expected = 0.8 * logs["dino_local_loss"] + 0.2 * logs["dino_global_loss"] + 0.2 * logs["koleo_loss"]
    expected = expected + logs["ibot_loss"]
    assert float(loss) == pytest.approx(float(expected), rel=1e-5)
    # with 8 local crops the scales are the 16/18 and 2/18 of the reference
    with torch.no_grad():
        loss8, logs8 = arch(ssl_batch(n_local=8, seed=1), iteration=5)
    e8 = 16 / 18 * logs8["dino_local_loss"] + 2 / 18 * logs8["dino_global_loss"] + 0.2 * logs8["koleo_loss"]
    assert float(loss8) == pytest.approx(float(e8 + logs8["ibot_loss"]), rel=1e-5)


def test_dino_global_term_recomputed_independently(arch: SSLMetaArch) -> None:
    batch = ssl_batch(B=3, seed=2)
    arch.eval()  # the student forward is deterministic here (no drop path, no RoPE jitter configured)
    with torch.no_grad():
        _, logs = arch(batch, iteration=1)
        temp = arch.schedules.at(1)["teacher_temp"]
        t_cls = arch.teacher["backbone"](batch["global_crops"])
        q = sinkhorn_knopp(arch.teacher["dino_head"](t_cls), temp).unflatten(0, (2, 3))
        s_out = arch.student["backbone"].forward_features([batch["global_crops"]], masks=[batch["masks"]])[0]
        s_logits = arch.student["dino_head"](s_out["x_norm_clstoken"]).unflatten(0, (2, 3))
    arch.train()
    total = 0.0
    for s in range(2):
        for t in range(2):
            if s == t:
                continue
            for b in range(3):
                total += -(q[t, b] * torch.log_softmax(s_logits[s, b] / 0.1, -1)).sum().item()
    assert float(logs["dino_global_loss"]) == pytest.approx(total / 6, rel=1e-4)


def test_mean_centering_option_and_no_local_crops() -> None:
    arch = SSLMetaArch(tiny_cfg("dino.centering=centering", "ibot.centering=centering"), total_iters=4)
    batch = ssl_batch()
    batch["local_crops"] = batch["local_crops"][:0]
    loss, logs = arch(batch, iteration=0)
    assert "dino_local_loss" not in logs  # only the global cross-view term: its scale is 2/2 = 1
    expected = logs["dino_global_loss"] + 0.2 * logs["koleo_loss"] + logs["ibot_loss"]
    assert float(loss.detach()) == pytest.approx(float(expected))
    assert arch.dino_loss.mean_centering.center.abs().sum() > 0  # the centre moved


def test_init_from_teacher_state_copies_weights() -> None:
    torch.manual_seed(1)
    src = SSLMetaArch(tiny_cfg(), total_iters=4)
    torch.manual_seed(2)
    dst = SSLMetaArch(tiny_cfg(), total_iters=4)
    teacher_state = src.teacher.state_dict()
    done = dst.init_from_teacher_state({"teacher": teacher_state})
    assert done == ["backbone", "dino_head", "ibot_head"]
    for k, v in teacher_state.items():
        assert torch.equal(dst.student.state_dict()[k], v) and torch.equal(dst.teacher.state_dict()[k], v)
    # a backbone-only file (official releases): heads stay fresh
    torch.manual_seed(3)
    fresh = SSLMetaArch(tiny_cfg(), total_iters=4)
    head_before = fresh.student["dino_head"].last_layer.weight.clone()
    assert fresh.init_from_teacher_state(src.teacher["backbone"].state_dict()) == ["backbone"]
    assert torch.equal(fresh.student["dino_head"].last_layer.weight, head_before)


def test_bad_inputs_fail_clearly(arch: SSLMetaArch) -> None:
    other = SSLMetaArch(tiny_cfg("student.overrides={depth: 3, pos_embed_rope_rescale_coords: null}"), total_iters=2)
    with pytest.raises(CheckpointError, match=r"does not fit the student backbone \(unexpected \['blocks.2"):
        arch.init_from_teacher_state(other.teacher["backbone"].state_dict(), source="other.pth")
    with pytest.raises(InputError, match="SSL batch has no 'global_crops'"):
        arch({"local_crops": torch.zeros(1)}, 0)
    with pytest.raises(ConfigError, match=r"koleo\.topk > 1 needs koleo\.distributed=true"):
        SSLMetaArch(tiny_cfg("koleo.topk=2"))
    with pytest.raises(ConfigError, match=r"gram.tokens_used='masked'/'unmasked' needs gram.img_level=false"):
        SSLMetaArch(tiny_cfg("gram.use_loss=true", "gram.tokens_used=masked", "gram.img_level=true"))
    no_sched = SSLMetaArch(tiny_cfg())
    with pytest.raises(ConfigError, match="SSLMetaArch has no schedules"):
        no_sched(ssl_batch(), 0)
    loss, _ = no_sched(ssl_batch(), 0, sched={"teacher_temp": 0.05})
    assert torch.isfinite(loss)


def test_cli_reports_bad_recipe_values(capsys: pytest.CaptureFixture[str], tmp_path) -> None:
    from geodino import cli

    code = cli.main(["pretrain", "ssl.gram.tokens_used=some", f"output_dir={tmp_path / 'run'}"])
    assert code == 2
    err = capsys.readouterr().err
    assert "gram.tokens_used='some' must be 'all', 'masked' or 'unmasked'" in err
    code = cli.main(["pretrain", "ssl.dino.centring=centering", f"output_dir={tmp_path / 'run'}"])
    assert code == 2
    assert "did you mean 'ssl.dino.centering'" in capsys.readouterr().err
