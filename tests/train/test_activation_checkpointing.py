"""Activation checkpointing of student blocks: the same gradients, what each mode keeps and recomputes (counted in
the backward pass's ops), no effect without gradients, EMA copies bound to their own weights, and the same weights
after real pretraining and distillation runs."""

from __future__ import annotations

import copy
from collections import Counter

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode

from geodino.errors import ConfigError
from geodino.models import build_model
from geodino.train.activation_checkpointing import apply_activation_checkpointing, checkpointing_mode


def _model(mode: str) -> torch.nn.Module:
    torch.manual_seed(0)
    m = build_model("vit_tiny", depth=2, patch_size=8, drop_path_rate=0.3).train()
    apply_activation_checkpointing(m.blocks, mode)
    return m


def _loss(m: torch.nn.Module) -> torch.Tensor:
    """Two crop groups of different sizes (the list-of-crops path), drop path active."""
    torch.manual_seed(1)
    xs = [torch.randn(4, 3, 32, 32), torch.randn(8, 3, 16, 16)]
    torch.manual_seed(2)
    out = m.forward_features_list(xs, [None, None])
    return sum((o["x_norm_clstoken"] ** 2).sum() + o["x_norm_patchtokens"].square().mean() for o in out)


class _Ops(TorchDispatchMode):
    """Counts the aten ops that run (by overload packet name)."""

    def __init__(self) -> None:
        super().__init__()
        self.n: Counter[str] = Counter()

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.n[func.overloadpacket.__name__] += 1
        return func(*args, **(kwargs or {}))


def _backward_ops(mode: str) -> tuple[Counter[str], dict[str, torch.Tensor]]:
    m = _model(mode)
    loss = _loss(m)
    with _Ops() as ops:
        loss.backward()
    return ops.n, {k: p.grad for k, p in m.named_parameters() if p.grad is not None}


def test_every_mode_gives_the_same_gradients_and_recomputes_what_it_says():
    off, g_off = _backward_ops("off")
    sel, g_sel = _backward_ops("selective")
    full, g_full = _backward_ops("full")
    for g in (g_sel, g_full):  # drop path's random subsets are replayed exactly in the recomputation
        assert g.keys() == g_off.keys()
        for k in g_off:
            torch.testing.assert_close(g[k], g_off[k], rtol=0, atol=1e-6, msg=k)

    def attention(c: Counter[str]) -> int:  # the forward attention kernel (its backward has its own op)
        return sum(v for k, v in c.items() if k.startswith("_scaled_dot_product") and "backward" not in k)

    # off: nothing of the forward runs again in backward
    assert off["native_layer_norm"] == 0 and off["gelu"] == 0 and attention(off) == 0
    # selective (official policy): norms, GELU and the linear layers (addmm) run again, attention does not
    assert sel["native_layer_norm"] > 0 and sel["gelu"] > 0 and sel["addmm"] > off["addmm"]
    assert attention(sel) == 0
    # full: the whole block runs again, attention included
    assert full["native_layer_norm"] > 0 and full["addmm"] > off["addmm"] and attention(full) > 0


def test_wrapping_keeps_names_is_idempotent_and_is_skipped_without_gradients(monkeypatch):
    plain, wrapped = _model("off"), _model("full")
    assert list(wrapped.state_dict()) == list(plain.state_dict())
    assert checkpointing_mode(wrapped.blocks) == "full" and checkpointing_mode(plain.blocks) == "off"
    assert apply_activation_checkpointing(wrapped.blocks, "full") == 0
    assert apply_activation_checkpointing(plain.blocks, "off") == 0

    import torch.utils.checkpoint as tuc

    def refuse(*a, **k):
        raise AssertionError("checkpoint must not run without gradients")

    monkeypatch.setattr(tuc, "checkpoint", refuse)
    with torch.no_grad():  # teachers and evaluation: the plain forward
        a = wrapped.forward_features(torch.randn(2, 3, 16, 16))["x_norm_clstoken"]
    assert a.shape == (2, 192)


def test_a_deep_copy_runs_its_own_weights():
    m = _model("selective").eval()
    c = copy.deepcopy(m)
    blk = c.blocks[0]
    assert blk.forward_list.owner is blk and blk.forward.owner is blk
    with torch.no_grad():
        for p in c.parameters():
            p.add_(0.1)
    x = torch.randn(2, 3, 16, 16)
    with torch.enable_grad():
        ym, yc = (net.forward_features(x)["x_norm_clstoken"] for net in (m, c))
    assert (ym - yc).abs().max() > 1e-3


def test_bad_modes_name_the_key():
    from geodino.train.config import TrainerConfig
    from geodino.train.distill import DistillConfig
    from geodino.train.distill.config import DistillTrainConfig

    with pytest.raises(ConfigError, match=r"trainer\.activation_checkpointing='some' is not one of off, selective"):
        TrainerConfig(activation_checkpointing="some").validate()
    with pytest.raises(ConfigError, match=r"train\.activation_checkpointing='yes' is not one of off, selective"):
        DistillConfig(train=DistillTrainConfig(activation_checkpointing="yes")).validate()
    # YAML reads a bare `off` as false; true is the official `checkpointing: true` (selective)
    for value, mode in ((False, "off"), (True, "selective"), ("Full", "full")):
        cfg = TrainerConfig(activation_checkpointing=value)
        cfg.validate()
        assert cfg.activation_checkpointing == mode


def test_pretraining_with_checkpointing_ends_with_the_same_weights(tmp_path, tiny_data, monkeypatch):
    """Two real steps of the recipe (drop path, masks, crops, EMA) with selective checkpointing end with the same
    student, teacher and optimizer state as without, and the student's blocks did run checkpointed."""
    import torch.utils.checkpoint as tuc

    from geodino.config import load_config
    from geodino.train import checkpointing as ck
    from geodino.train.pretrain import PretrainConfig, pretrain
    from tests.train.conftest import write_config

    calls = Counter()
    real = tuc.checkpoint

    def counting(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    monkeypatch.setattr(tuc, "checkpoint", counting)
    runs = {}
    for mode in ("off", "selective"):
        cfg = load_config(
            PretrainConfig,
            write_config(tmp_path / f"{mode}.yaml", tmp_path / mode, tiny_data),
            [f"trainer.activation_checkpointing={mode}", "checkpoint.export_at_end=false"],
        )
        before = calls["n"]
        runs[mode] = ck.load_file(pretrain(cfg) / "checkpoints" / "last.ckpt")
        calls[mode] = calls["n"] - before
    # 2 steps x 2 student blocks (the teacher runs without gradients: never checkpointed)
    assert calls["off"] == 0 and calls["selective"] == 2 * 2
    a, b = runs["off"]["state_dict"], runs["selective"]["state_dict"]
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(b[k], a[k], rtol=0, atol=1e-6, msg=k)


def test_the_module_checkpoints_then_compiles_the_student_blocks_only():
    """SSLModule.configure_model in the official order (checkpointing inside the compiled block): the compiled,
    checkpointed student gives the eager gradients; the teacher's blocks are left plain."""
    from geodino.train.module import SSLModule
    from tests.train.standin import StandInArch, schedules

    torch.manual_seed(0)
    arch = StandInArch()
    ref = copy.deepcopy(arch.student["backbone"])
    module = SSLModule(arch, schedules, compile_blocks=True, activation_checkpointing="selective")
    module.configure_model()
    blocks = arch.student["backbone"].blocks
    assert checkpointing_mode(blocks) == "selective" and checkpointing_mode(arch.teacher["backbone"].blocks) == "off"
    assert not isinstance(blocks[0].forward_list, type(blocks[0].forward))  # compiled around the wrapper
    torch.manual_seed(1)
    x = torch.randn(2, 3, 32, 32)
    grads = []
    for net in (ref, arch.student["backbone"]):
        torch.manual_seed(2)
        out = net.forward_features_list([x], [None])[0]
        ((out["x_norm_clstoken"] ** 2).sum() + out["x_norm_patchtokens"].mean()).backward()
        grads.append({k: p.grad for k, p in net.named_parameters() if p.grad is not None})
    assert grads[0].keys() == grads[1].keys()
    for k in grads[0]:
        torch.testing.assert_close(grads[1][k], grads[0][k], rtol=1e-4, atol=1e-5, msg=k)
