"""DistillMetaArch: frozen teacher, one shared teacher forward, per-student losses and EMAs, heads warm-up/files."""

from __future__ import annotations

import copy
import itertools

import numpy as np
import pytest
import torch

from geodino.data.masking import collate_masks, sample_masks
from geodino.errors import CheckpointError
from geodino.models import build_model
from geodino.models.heads import DINOHead
from geodino.train.distill_arch import DistillMetaArch, DistillStudent
from geodino.train.host import host_floats
from geodino.train.teacher_heads import head_from_state, load_heads_file, save_heads_file, warmup_heads
from tests.helpers import HostReads

PATCH, G, L, B = 8, 32, 16, 4
K_DINO, K_IBOT = 64, 48


def _vit(arch: str, depth: int = 1) -> torch.nn.Module:
    return build_model(arch, patch_size=PATCH, depth=depth, n_storage_tokens=1)


def _heads(dim: int) -> tuple[DINOHead, DINOHead]:
    return DINOHead(dim, K_DINO, 32, 16), DINOHead(dim, K_IBOT, 32, 16)


def _student(arch: str) -> DistillStudent:
    bb = _vit(arch)
    return DistillStudent(bb, *_heads(bb.embed_dim))


def _batch(seed: int = 0, b: int = B) -> dict:
    g = torch.Generator().manual_seed(seed)
    masks, upper = sample_masks(2 * b, (G // PATCH, G // PATCH), np.random.default_rng(seed))
    out = {
        "global_crops": torch.randn(2 * b, 3, G, G, generator=g),
        "local_crops": torch.randn(4 * b, 3, L, L, generator=g),
    }
    out.update({k: v for k, v in collate_masks(masks, upper).items() if k != "upperbound"})
    return out


def _arch(students: dict[str, DistillStudent], seed: int = 0) -> DistillMetaArch:
    torch.manual_seed(seed)
    teacher = _vit("vit_tiny", depth=2)
    return DistillMetaArch(teacher, *_heads(teacher.embed_dim), students)


def _train(arch: DistillMetaArch, steps: int) -> list[dict]:
    opt = torch.optim.AdamW([p for s in arch.students.values() for p in s.parameters()], lr=1e-3)
    logs = []
    for i in range(steps):
        _, metrics = arch.forward_backward(_batch(i), teacher_temp=0.07)
        opt.step()
        opt.zero_grad(set_to_none=True)
        arch.update_ema(0.9)
        logs.append(host_floats(metrics))
    return logs


def test_teacher_frozen_and_students_learn() -> None:
    torch.manual_seed(0)
    arch = _arch({"tiny": _student("vit_tiny"), "small": _student("vit_small")})
    t_before = copy.deepcopy(arch.teacher.state_dict())
    s_before = copy.deepcopy(arch.students["small"].state_dict())
    arch.train()
    assert not arch.teacher.training and not arch.students_ema.training and arch.students.training
    logs = _train(arch, 3)
    assert all(not p.requires_grad and p.grad is None for p in arch.teacher.parameters())
    for k, v in arch.teacher.state_dict().items():
        assert torch.equal(v, t_before[k]), k
    changed = [k for k, v in arch.students["small"].state_dict().items() if not torch.equal(v, s_before[k])]
    assert any(k.startswith("backbone.blocks.0") for k in changed)
    # every term of both students is logged and finite
    for name in ("tiny", "small"):
        for term in ("dino_local", "dino_global", "koleo", "ibot", "loss"):
            assert np.isfinite(logs[-1][f"{name}/{term}"])
    # the EMA moved towards the student but is not the student
    ema = arch.students_ema["small"].backbone.blocks[0].attn.qkv.weight
    now = arch.students["small"].backbone.blocks[0].attn.qkv.weight
    before = s_before["backbone.blocks.0.attn.qkv.weight"]
    assert not torch.equal(ema, now) and not torch.equal(ema, before)


def test_one_teacher_forward_per_step_for_two_students() -> None:
    arch = _arch({"a": _student("vit_tiny"), "b": _student("vit_tiny")})
    calls = {"n": 0}
    real = arch.teacher["backbone"].forward_features

    def counted(*args, **kwargs):
        calls["n"] += 1
        return real(*args, **kwargs)

    arch.teacher["backbone"].forward_features = counted  # type: ignore[method-assign]
    _train(arch, 3)
    assert calls["n"] == 3 and arch.teacher_forward_count == 3


def test_shared_targets_equal_single_student_run() -> None:
    """A student's step-0 losses do not depend on who else is distilled alongside it (same teacher targets)."""
    torch.manual_seed(1)
    a = _student("vit_tiny")
    other = _student("vit_small")
    solo = _arch({"a": copy.deepcopy(a)}, seed=3)
    pair = _arch({"a": copy.deepcopy(a), "o": other}, seed=3)
    solo.eval()  # no drop path: deterministic forwards
    pair.eval()
    _, m1 = solo.forward_backward(_batch(5), teacher_temp=0.06)
    _, m2 = pair.forward_backward(_batch(5), teacher_temp=0.06)
    for term in ("dino_local", "dino_global", "koleo", "ibot"):
        assert float(m1[f"a/{term}"]) == pytest.approx(float(m2[f"a/{term}"]), rel=1e-5)


def test_ibot_term_is_patch_distillation_without_masks() -> None:
    """The student sees unmasked crops: its iBOT logits at the sampled positions equal those of a plain forward."""
    st = _student("vit_tiny").eval()
    batch = _batch(2)
    out = st(batch["global_crops"], batch["local_crops"], batch["mask_indices"])
    plain = st.backbone.forward_features(batch["global_crops"])["x_norm_patchtokens"].flatten(0, 1)
    ref = st.ibot_head(plain[batch["mask_indices"]])
    torch.testing.assert_close(out["patch_logits"], ref)


def test_head_file_round_trip_and_size_inference(tmp_path) -> None:
    dino = DINOHead(24, 40, hidden_dim=20, bottleneck_dim=12, nlayers=2)
    ibot = DINOHead(24, 30, hidden_dim=20, bottleneck_dim=10, nlayers=3, mlp_bias=False)
    path = save_heads_file(tmp_path / "t.heads.pth", dino, ibot, {"teacher_spec": "x"})
    d2, i2 = load_heads_file(path, embed_dim=24)
    assert (d2.out_dim, d2.hidden_dim, d2.bottleneck_dim, d2.nlayers) == (40, 20, 12, 2)
    assert (i2.out_dim, i2.bottleneck_dim, i2.nlayers) == (30, 10, 3)
    x = torch.randn(5, 24)
    torch.testing.assert_close(d2(x), dino(x))
    torch.testing.assert_close(i2(x), ibot(x))
    # the official eval-dump layout {"teacher": {"dino_head.*", "ibot_head.*", "backbone.*"}} loads too
    dump = {
        "teacher": {
            **{f"dino_head.{k}": v for k, v in dino.state_dict().items()},
            **{f"ibot_head.{k}": v for k, v in ibot.state_dict().items()},
        }
    }
    torch.save(dump, tmp_path / "teacher_checkpoint.pth")
    d3, _ = load_heads_file(tmp_path / "teacher_checkpoint.pth")
    torch.testing.assert_close(d3(x), dino(x))
    one = DINOHead(24, 8, 16, 16, nlayers=1)
    assert head_from_state(one.state_dict(), "mem", "dino_head").nlayers == 1


def test_heads_file_errors(tmp_path) -> None:
    dino, ibot = DINOHead(24, 8, 16, 8), DINOHead(24, 8, 16, 8)
    path = save_heads_file(tmp_path / "h.heads.pth", dino, ibot)
    with pytest.raises(CheckpointError, match=r"expects 24-d features but the teacher backbone has embed_dim 192"):
        load_heads_file(path, embed_dim=192)
    with pytest.raises(CheckpointError, match=r"teacher.heads file .*nope.pth not found"):
        load_heads_file(tmp_path / "nope.pth")
    torch.save({"w": torch.zeros(2)}, tmp_path / "plain.pth")
    with pytest.raises(CheckpointError, match="holds no dino_head and ibot_head weights"):
        load_heads_file(tmp_path / "plain.pth")


def _batches():
    """The loader's batches, one after another (the heads warm-up draws as many as it needs)."""
    return map(_batch, itertools.count())


def test_warmup_trains_heads_only_and_returns_frozen_ema_heads() -> None:
    torch.manual_seed(0)
    backbone = _vit("vit_tiny", depth=2)
    before = copy.deepcopy(backbone.state_dict())
    dino, ibot = _heads(backbone.embed_dim)
    init = copy.deepcopy(dino.state_dict())

    d, i, hist = warmup_heads(backbone, _batches(), steps=4, dino=dino, ibot=ibot, progress=False)
    assert len(hist) == 4 and all(np.isfinite(h["loss"]) for h in hist)
    for k, v in backbone.state_dict().items():
        assert torch.equal(v, before[k]), k
    assert all(p.grad is None for p in backbone.parameters())
    assert not any(p.requires_grad for p in list(d.parameters()) + list(i.parameters()))
    assert any(not torch.equal(v, init[k]) for k, v in d.state_dict().items())


def test_step_reads_nothing_on_the_host_until_the_row_is_logged() -> None:
    """`forward_backward` keeps every metric on the device (a float read before `backward` would make the host wait
    for the forward on a GPU); `host_floats` reads them all at once, in order, when a row is logged."""
    arch = _arch({"a": _student("vit_tiny"), "b": _student("vit_tiny")})
    batch = _batch(1)  # made by the loader, on the host (sample_masks reads its float32 ratios there)
    with HostReads() as reads:
        loss, metrics = arch.forward_backward(batch, teacher_temp=0.07)
    assert reads.n == 0
    assert all(isinstance(v, torch.Tensor) and v.ndim == 0 for v in metrics.values())
    row = host_floats({"step": 3.0, **metrics, "lr": 0.5})
    assert list(row) == ["step", *metrics, "lr"] and row["step"] == 3.0 and row["lr"] == 0.5
    assert all(type(v) is float for v in row.values())
    assert row["loss"] == float(loss) and row["a/ibot"] == float(metrics["a/ibot"])
    assert row["loss"] == pytest.approx(sum(row[f"{s}/loss"] for s in ("a", "b")), rel=1e-6)


def test_bf16_autocast_step_is_finite() -> None:
    """train.precision=bf16-mixed: the step runs under autocast; losses (fp32 inside) stay finite."""
    arch = _arch({"a": _student("vit_tiny")})
    with torch.autocast("cpu", dtype=torch.bfloat16):
        loss, metrics = arch.forward_backward(_batch(1), teacher_temp=0.07)
    assert torch.isfinite(loss) and all(np.isfinite(v) for v in host_floats(metrics).values())
    assert all(p.grad is not None for p in arch.students["a"].backbone.blocks[0].parameters())


def _batch_n(n_g: int, perm: torch.Tensor, b: int = B) -> dict:
    """A batch of `n_g` global crops per image (crop-major, as collate_ssl stacks them), its images reordered by
    `perm` in every crop, local crop and mask alike."""
    g = torch.Generator().manual_seed(7)
    glob = torch.randn(n_g, b, 3, G, G, generator=g)[:, perm].flatten(0, 1)
    loc = torch.randn(2, b, 3, L, L, generator=g)[:, perm].flatten(0, 1)
    masks, upper = sample_masks(n_g * b, (G // PATCH, G // PATCH), np.random.default_rng(3))
    masks = masks.view(n_g, b, -1)[:, perm].flatten(0, 1)
    out = {"global_crops": glob, "local_crops": loc, "n_global_crops": n_g}
    out.update({k: v for k, v in collate_masks(masks, upper).items() if k != "upperbound"})
    return out


@pytest.mark.parametrize("n_g", [1, 3])
def test_the_batchs_global_crop_count_groups_the_crops(n_g: int) -> None:
    """The DINO and iBOT terms average over images, so reordering the images (in every crop alike) must not change
    them (KoLeo works on groups of images in batch order: left out); with the rows split by an assumed 2 crops
    (the old code, whatever crops.n_global was) crops of other images were paired and the reordering changed
    them (n_g = 3), or one crop gave 0 x NaN (n_g = 1)."""
    arch = _arch({"s": _student("vit_tiny")})
    arch.eval()  # no drop path: two calls see the same network
    runs = []
    for perm in (torch.arange(B), torch.tensor([2, 0, 3, 1])):
        loss, metrics = arch.forward_backward(_batch_n(n_g, perm), teacher_temp=0.07)
        assert torch.isfinite(loss)
        runs.append({k: float(v) for k, v in metrics.items() if "koleo" not in k and "loss" not in k})
    assert set(runs[0]) == {"s/dino_local", "s/ibot"} | ({"s/dino_global"} if n_g > 1 else set())
    for key in runs[0]:
        assert runs[0][key] == pytest.approx(runs[1][key], rel=1e-5), key
    assert arch.n_global_crops == n_g


def test_warmup_reads_its_losses_in_one_copy_per_step(monkeypatch) -> None:
    """The heads warm-up logs three losses per step: read together (`host_floats`, one device-to-host copy), not by
    three `float()` calls, each of which waited for the GPU."""
    import geodino.train.teacher_heads as th

    torch.manual_seed(0)
    backbone = _vit("vit_tiny", depth=2)
    dino, ibot = _heads(backbone.embed_dim)
    rows: list[dict] = []
    real = th.host_floats
    monkeypatch.setattr(th, "host_floats", lambda row: rows.append(dict(row)) or real(row))

    _, _, hist = warmup_heads(backbone, _batches(), steps=2, dino=dino, ibot=ibot, progress=False)
    assert len(rows) == 2  # one copy per step, of the losses still on the device
    assert all(isinstance(r[k], torch.Tensor) for r in rows for k in ("loss", "dino", "ibot"))
    assert [h["step"] for h in hist] == [0.0, 1.0] and all(type(h["loss"]) is float for h in hist)
