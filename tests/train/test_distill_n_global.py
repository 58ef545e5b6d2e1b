"""Distillation with `crops.n_global` other than the official 2: the loader's crop count reaches the loss (it was
dropped on the way to the device, so the rows were split as 2 crops per image), one iBOT mask per global crop, the
DINO global term pairs each student global crop with the teacher's other global crops of the same image, and
KoLeo runs per crop; with 2 crops the step is what it was."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pytest
import torch
from torch import nn
from torch.nn import functional as F

from geodino.config import load_config
from geodino.errors import InputError
from geodino.losses.koleo import KoLeoLoss
from geodino.train.distill import DistillConfig, distill
from geodino.train.distill_arch import DistillMetaArch, DistillStudent

PATCH, GLOBAL, B = 8, 32, 4
HEADS = "{head_n_prototypes: 64, head_hidden_dim: 32, head_bottleneck_dim: 16}"


def _cfg(images: Path, out: Path, n_global: int) -> DistillConfig:
    return load_config(
        DistillConfig,
        None,
        [
            f"output_dir={out}",
            "teacher.spec=arch:vit_tiny?seed=0&patch_size=8&depth=2&n_storage_tokens=1",
            "teacher.head_warmup_steps=1",
            f"dino={HEADS}",
            f"ibot={HEADS}",
            f"data.sources=[{{type: images, paths: [{images}], sensor: imagenet}}]",
            f"crops={{global_size: {GLOBAL}, local_size: 16, n_local: 2, n_global: {n_global}, "
            "vflips: false, rot90: false}",  # web photos: their up kept
            "schedules.momentum={start: 0.0, peak: 0.0, end: 1.0}",  # a 1-step run's EMA: the students, not their init
            "students=[{name: tiny, arch: vit_tiny, drop_path_rate: 0.0, overrides: {depth: 1, n_storage_tokens: 1}}]",
            "train.max_steps=1",
            f"train.global_batch_size={B}",
            "train.num_workers=0",
            "train.device=cpu",
            "train.log_every_n_steps=1",
            "train.checkpoint_every_n_steps=10",
            "train.progress_bar=false",
        ],
    )


def _spied_step(images: Path, out: Path, n_global: int, monkeypatch) -> dict[str, Any]:
    """Run a one-step distillation; return the step's inputs, metrics, teacher targets, student outputs and arch."""
    seen: dict[str, Any] = {}
    real_fb, real_tt, real_fwd = (
        DistillMetaArch.forward_backward,
        DistillMetaArch.teacher_targets,
        DistillStudent.forward,
    )

    def forward_backward(self, batch, teacher_temp, global_batch_size=None):  # type: ignore[no-untyped-def]
        seen.update(inputs=dict(batch), arch=self, temp=teacher_temp, rng=torch.get_rng_state())
        loss, metrics = real_fb(self, batch, teacher_temp, global_batch_size)
        seen.update(loss=loss, metrics=metrics)
        return loss, metrics

    def teacher_targets(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = real_tt(self, *args, **kwargs)
        seen["teacher"] = {k: v.detach().clone() for k, v in out.items()}
        return out

    def forward(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = real_fwd(self, *args, **kwargs)
        seen["student"] = {k: v.detach().clone() for k, v in out.items()}
        return out

    monkeypatch.setattr(DistillMetaArch, "forward_backward", forward_backward)
    monkeypatch.setattr(DistillMetaArch, "teacher_targets", teacher_targets)
    monkeypatch.setattr(DistillStudent, "forward", forward)
    distill(_cfg(images, out, n_global))
    monkeypatch.undo()
    return seen


@pytest.mark.parametrize("n_global", [1, 3])
def test_one_and_three_global_crops_run_a_step(images, tmp_path, monkeypatch, n_global) -> None:
    """Were: an IndexError (1 crop: masks of 2 crops indexed into 1 crop's patches) and an unflatten error (3)."""
    seen = _spied_step(images, tmp_path / "run", n_global, monkeypatch)
    x = seen["inputs"]
    assert x["n_global_crops"] == n_global and x["global_crops"].shape[0] == n_global * B
    assert x["masks"].shape == (n_global * B, (GLOBAL // PATCH) ** 2)  # one mask per global crop
    assert int(x["mask_indices"].max()) < n_global * B * (GLOBAL // PATCH) ** 2
    m = {k: float(v) for k, v in seen["metrics"].items()}
    assert all(math.isfinite(v) for v in m.values())
    assert ("tiny/dino_global" in m) == (n_global > 1)  # one crop per image has no cross-view pair
    assert seen["teacher"]["cls_centered"].shape[:2] == (n_global, B)


def _hand_dino_global(z: torch.Tensor, p: torch.Tensor, n: int, temp: float) -> torch.Tensor:
    """Each student global crop s of image b against every teacher global crop t != s of image b, by loops over
    crop-major rows (row = crop * B + image)."""
    b = z.shape[0] // n
    total, pairs = z.new_zeros((), dtype=torch.float64), 0
    for s in range(n):
        for t in range(n):
            if s == t:
                continue
            for i in range(b):
                log_q = F.log_softmax(z[s * b + i].double() / temp, dim=-1)
                total = total - (p[t * b + i].double() * log_q).sum()
                pairs += 1
    return total / pairs


class _PoolNet(nn.Module):
    """A stand-in backbone whose CLS token differs from crop to crop (a random ViT's barely does, which would make
    every pairing of crops give the same DINO loss): patch embedding, CLS = a linear map of the mean patch."""

    def __init__(self, dim: int) -> None:
        super().__init__()
        self.embed_dim, self.patch_size = dim, PATCH
        self.proj = nn.Conv2d(3, dim, PATCH, PATCH)
        self.cls = nn.Linear(dim, dim)

    def _one(self, x: torch.Tensor) -> dict[str, torch.Tensor]:
        p = self.proj(x).flatten(2).transpose(1, 2)
        return {"x_norm_clstoken": 4 * self.cls(p.mean(1)), "x_norm_patchtokens": p}

    def forward_features(self, x, masks=None):  # type: ignore[no-untyped-def]
        return [self._one(t) for t in x] if isinstance(x, list) else self._one(x)


def test_four_global_crops_pair_each_crop_with_the_other_crops_of_its_image(monkeypatch) -> None:
    """The step's data path (train_step: `crops_on`, `student_masks`, `forward_backward`) on a collated batch of 4
    global crops per image: the DINO global term pairs each student global crop with the teacher's other 3 global
    crops of the same image and KoLeo runs per crop, as hand-built references say. Before, `crops_on` dropped the
    count, so the 16 rows were split as 2 crops of 8 "images", and 8 masks were drawn for the 16 crops."""
    from geodino.data.collate import collate_ssl, crops_on
    from geodino.models.heads import DINOHead
    from geodino.train.distill.build import student_masks

    n, n_local = 4, 2
    torch.manual_seed(0)
    g = torch.Generator().manual_seed(1)
    samples = [
        {
            "global_crops": [torch.randn(3, GLOBAL, GLOBAL, generator=g) + i for _ in range(n)],
            "local_crops": [torch.randn(3, 16, 16, generator=g) + i for _ in range(n_local)],
        }
        for i in range(B)
    ]
    batch = collate_ssl(samples, step=0, source="test", seed=0, patch_size=PATCH)
    t, s = _PoolNet(24), _PoolNet(16)
    student = DistillStudent(s, DINOHead(16, 64, 32, 16), DINOHead(16, 48, 32, 16))
    arch = DistillMetaArch(t, DINOHead(24, 64, 32, 16), DINOHead(24, 48, 32, 16), {"s": student})
    with torch.no_grad():  # peaked targets and predictions, so that the pairing shows in the loss
        for head in (arch.teacher["dino_head"], student.dino_head):
            head.last_layer.weight.mul_(30)
    seen: dict[str, Any] = {}
    real_tt, real_fwd = DistillMetaArch.teacher_targets, DistillStudent.forward

    def teacher_targets(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        seen["teacher"] = real_tt(self, *args, **kwargs)
        return seen["teacher"]

    def forward(self, *args, **kwargs):  # type: ignore[no-untyped-def]
        out = real_fwd(self, *args, **kwargs)
        seen["student"] = {k: v.detach() for k, v in out.items()}
        return out

    monkeypatch.setattr(DistillMetaArch, "teacher_targets", teacher_targets)
    monkeypatch.setattr(DistillStudent, "forward", forward)
    inputs = crops_on(batch, "cpu")
    inputs.update(student_masks(DistillConfig(), batch, B, PATCH, 0, 0))  # crops.n_global: the default 2
    _, m = arch.forward_backward(inputs, 0.07)
    st = seen["student"]
    z = st["global_logits"]  # [n·B, K] crop-major
    p = seen["teacher"]["cls_centered"].flatten(0, 1)  # [n·B, K] crop-major, however the arch split it
    temp = arch.weights.student_temp
    dino_global = _hand_dino_global(z, p, n, temp)
    wrong = _hand_dino_global(z, p, 2, temp)  # 2 crops of 8 "images": what the rows gave before
    assert abs(float(dino_global) - float(wrong)) > 1e-3  # the reference tells the pairings apart
    assert float(m["s/dino_global"]) == pytest.approx(float(dino_global), rel=1e-5)
    g_cls = st["global_cls"]
    koleo = sum(KoLeoLoss()(g_cls[c * B : (c + 1) * B]) for c in range(n)) / n
    assert float(m["s/koleo"]) == pytest.approx(float(koleo), rel=1e-5)
    assert inputs["masks"].shape[0] == n * B and torch.equal(inputs["masks"], batch["masks"])


def test_four_global_crops_give_the_official_term_scales(images, tmp_path, monkeypatch) -> None:
    """n_global=4 through `distill`: the loader's count reaches the loss (KoLeo per crop of the 4 images, not per
    half of 8 "images"), one mask per global crop, and the total weighs the terms by their pair counts."""
    n = 4
    seen = _spied_step(images, tmp_path / "run", n, monkeypatch)
    x, st, te, m = seen["inputs"], seen["student"], seen["teacher"], seen["metrics"]
    assert x["n_global_crops"] == n
    dino_global = _hand_dino_global(st["global_logits"], te["cls_centered"].flatten(0, 1), n, 0.1)
    assert float(m["tiny/dino_global"]) == pytest.approx(float(dino_global), rel=1e-5)
    # KoLeo on each crop's B images (not on 8 "images" of 2 crops), averaged over the crops
    g_cls = st["global_cls"]
    koleo = sum(KoLeoLoss()(g_cls[c * B : (c + 1) * B]) for c in range(n)) / n
    assert float(m["tiny/koleo"]) == pytest.approx(float(koleo), rel=1e-5)
    # the total with the official term scales: n(n-1) global pairs, n·n_local local pairs, KoLeo x n
    n_local = st["local_logits"].shape[0] // B
    g_terms, l_terms = n * (n - 1), n * n_local
    w = seen["arch"].weights
    total = (
        w.dino * l_terms / (g_terms + l_terms) * float(m["tiny/dino_local"])
        + w.dino * g_terms / (g_terms + l_terms) * float(dino_global)
        + w.koleo * n * float(koleo)
        + w.ibot * float(m["tiny/ibot"])
    )
    assert float(m["tiny/loss"]) == pytest.approx(total, rel=1e-5)
    assert x["masks"].shape[0] == n * B  # one iBOT mask per global crop (were 8 for 16 crops)


def test_two_global_crops_give_the_step_they_gave_before(images, tmp_path, monkeypatch) -> None:
    """n_global=2: the loader's masks are used as before and the loss equals, bit for bit, the step on the inputs
    as they were built before the count was carried (no `n_global_crops`: the arch's default 2)."""
    seen = _spied_step(images, tmp_path / "run", 2, monkeypatch)
    x = seen["inputs"]
    assert x["n_global_crops"] == 2 and x["masks"].shape[0] == 2 * B
    arch = seen["arch"]
    old = {k: v for k, v in x.items() if k != "n_global_crops"}
    # the weights moved after the step: rerun both variants from the same state and RNG
    before = seen["rng"]
    arch.zero_grad(set_to_none=True)
    torch.set_rng_state(before)
    new_loss, new_m = arch.forward_backward(x, seen["temp"], B)
    arch.zero_grad(set_to_none=True)
    torch.set_rng_state(before)
    old_loss, old_m = arch.forward_backward(old, seen["temp"], B)
    assert torch.equal(new_loss, old_loss)
    for k in old_m:
        assert torch.equal(new_m[k], old_m[k]), k


def test_masks_for_another_crop_count_are_refused() -> None:
    """Masks drawn for 2 crops per image with 4 crops in the batch: refused in one line, not silently half-masked."""
    torch.manual_seed(0)
    from geodino.models import build_model
    from geodino.models.heads import DINOHead

    t = build_model("vit_tiny", patch_size=PATCH, depth=1, n_storage_tokens=1)
    s = build_model("vit_tiny", patch_size=PATCH, depth=1, n_storage_tokens=1)
    arch = DistillMetaArch(
        t, DINOHead(t.embed_dim, 64, 32, 16), DINOHead(t.embed_dim, 48, 32, 16),
        {"s": DistillStudent(s, DINOHead(s.embed_dim, 64, 32, 16), DINOHead(s.embed_dim, 48, 32, 16))},
    )  # fmt: skip
    n_tok = (GLOBAL // PATCH) ** 2
    masks = torch.zeros(2 * B, n_tok, dtype=torch.bool)
    masks[:, 0] = True
    idx = torch.arange(2 * B) * n_tok
    batch = {
        "global_crops": torch.randn(4 * B, 3, GLOBAL, GLOBAL),
        "local_crops": torch.zeros(0, 3, 0, 0),
        "n_global_crops": 4,
        "masks": masks,
        "mask_indices": idx,
        "masks_weight": torch.ones(2 * B),
        "n_masked_patches": torch.tensor([2 * B]),
    }
    with pytest.raises(InputError, match=r"masks has 8 rows for 16 student global crops \(4 per image\)"):
        arch.forward_backward(batch, 0.07)
    with pytest.raises(InputError, match=r"global_crops has 16 rows, not a multiple of 3 crops per image"):
        arch.forward_backward({**batch, "n_global_crops": 3}, 0.07)
