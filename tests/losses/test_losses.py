"""Losses against explicit-loop computations on small tensors."""

from __future__ import annotations

import math

import pytest
import torch

from geodino.losses import (
    DINOLoss,
    GramLoss,
    IBOTPatchLoss,
    KoLeoLoss,
    KoLeoLossDistributed,
    masks_weight_from_masks,
    sinkhorn_knopp,
)
from tests.helpers import HostReads


def _log_softmax_row(v: list[float], temp: float) -> list[float]:
    z = [x / temp for x in v]
    m = max(z)
    lse = m + math.log(sum(math.exp(x - m) for x in z))
    return [x - lse for x in z]


def _sk_reference(t: torch.Tensor, temp: float, iters: int = 3) -> torch.Tensor:
    """Sinkhorn-Knopp with python loops over a [B, K] float64 tensor."""
    B, K = t.shape
    Q = [[math.exp(t[b, k].item() / temp) for b in range(B)] for k in range(K)]  # K x B
    s = sum(sum(r) for r in Q)
    Q = [[q / s for q in r] for r in Q]
    for _ in range(iters):
        for k in range(K):
            rs = sum(Q[k])
            Q[k] = [q / rs / K for q in Q[k]]
        for b in range(B):
            cs = sum(Q[k][b] for k in range(K))
            for k in range(K):
                Q[k][b] = Q[k][b] / cs / B
    return torch.tensor([[Q[k][b] * B for k in range(K)] for b in range(B)], dtype=torch.float64)


def test_sinkhorn_matches_loops_and_marginals() -> None:
    g = torch.Generator().manual_seed(0)
    t = torch.randn(6, 5, generator=g)
    q = sinkhorn_knopp(t, 0.1, n_iterations=3)
    assert torch.allclose(q.double(), _sk_reference(t.double(), 0.1), atol=1e-6)
    assert torch.allclose(q.sum(1), torch.ones(6), atol=1e-5)  # each sample is an assignment
    many = sinkhorn_knopp(t, 0.1, n_iterations=200)
    assert torch.allclose(many.sum(0), torch.full((5,), 6 / 5), atol=1e-4)  # prototypes used uniformly


def test_sinkhorn_is_overflow_safe() -> None:
    t = torch.tensor([[4.0, 3.5, 3.0], [3.8, 3.2, 3.6]])
    assert not torch.isfinite(torch.exp(t / 0.04)).all()  # the unshifted official formula overflows here
    q = sinkhorn_knopp(t, 0.04)  # exp(125) overflows fp32 without the global-max shift
    assert torch.isfinite(q).all()
    assert torch.allclose(q.double(), _sk_reference(t.double(), 0.04), atol=1e-5)


def test_dino_loss_cross_view_and_full() -> None:
    g = torch.Generator().manual_seed(1)
    S, T, B, K = 3, 2, 4, 5
    s = torch.randn(S, B, K, generator=g)
    p = torch.softmax(torch.randn(T, B, K, generator=g), -1)
    loss = DINOLoss(K, student_temp=0.1)
    for ignore in (False, True):
        total, count = 0.0, 0
        for si in range(S):
            for ti in range(T):
                if ignore and si == ti:
                    continue
                for b in range(B):
                    ls = _log_softmax_row(s[si, b].tolist(), 0.1)
                    total += -sum(p[ti, b, k].item() * ls[k] for k in range(K))
                    count += 1
        assert loss(s, p, ignore_diagonal=ignore).item() == pytest.approx(total / count, rel=1e-5)


def test_dino_mean_centering_momentum() -> None:
    loss = DINOLoss(3, centering="centering", center_momentum=0.9)
    t1 = torch.tensor([[1.0, 2.0, 3.0], [3.0, 2.0, 1.0]])
    p1 = loss.teacher_targets(t1, 0.5)
    assert torch.allclose(p1, torch.softmax(t1 / 0.5, -1))  # centre starts at 0
    assert torch.allclose(loss.mean_centering.center, 0.1 * t1.mean(0, keepdim=True))
    t2 = torch.zeros(2, 3)
    p2 = loss.teacher_targets(t2, 0.5)
    assert torch.allclose(p2, torch.softmax((t2 - 0.1 * t1.mean(0)) / 0.5, -1))
    assert torch.allclose(loss.mean_centering.center, 0.09 * t1.mean(0, keepdim=True))
    with pytest.raises(ValueError, match="centering"):
        DINOLoss(3, centering="bogus")


def test_ibot_per_image_weighting() -> None:
    masks = torch.tensor([[1, 1, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]], dtype=torch.bool)  # 3 crops, 3+1+0 masked
    g = torch.Generator().manual_seed(2)
    K = 4
    s = torch.randn(4, K, generator=g)
    t = torch.softmax(torch.randn(4, K, generator=g), -1)
    w = masks_weight_from_masks(masks)
    assert w.tolist() == pytest.approx([1 / 3, 1 / 3, 1 / 3, 1.0])
    expected = 0.0
    for m in range(4):
        ls = _log_softmax_row(s[m].tolist(), 0.1)
        ce = -sum(t[m, k].item() * ls[k] for k in range(K))
        expected += ce * (1 / 3 if m < 3 else 1.0)
    expected /= 3  # divided by all global crops, masked or not
    loss = IBOTPatchLoss(K)
    assert loss(s, t, masks, w).item() == pytest.approx(expected, rel=1e-5)
    assert loss(s, t, masks).item() == pytest.approx(expected, rel=1e-5)  # weights derived from masks
    # the single-patch crop weighs as much as the three-patch crop
    big = torch.zeros(4)
    big[3] = 1.0
    assert loss(s, t, masks, w * big).item() * 3 == pytest.approx(
        -sum(t[3, k].item() * _log_softmax_row(s[3].tolist(), 0.1)[k] for k in range(K)), rel=1e-5
    )


def test_ibot_teacher_sk_uses_masked_count() -> None:
    t = torch.randn(7, 5)
    loss = IBOTPatchLoss(5)
    q = loss.teacher_targets(t, 0.07, n_masked_patches=torch.tensor([7]))
    assert torch.allclose(q.double(), _sk_reference(t.double(), 0.07), atol=1e-5)


def test_sinkhorn_masked_count_stays_on_the_device() -> None:
    """The iBOT count is a device tensor (as official): no host read (a GPU sync per step), and dividing by it gives
    bit for bit what dividing by the same count as a Python number gives."""
    t = torch.randn(37, 11) * 3
    with HostReads() as reads:
        q = sinkhorn_knopp(t, 0.07, n_samples=torch.tensor([37]))
    assert reads.n == 0
    assert torch.equal(q, sinkhorn_knopp(t, 0.07))  # n_samples=None: B = 37 as a float


def _koleo_reference(x: torch.Tensor) -> float:
    xs = [v / v.norm() for v in x.double()]
    total = 0.0
    for i, xi in enumerate(xs):
        best, best_j = -2.0, -1
        for j, xj in enumerate(xs):
            if j != i and float(xi @ xj) > best:
                best, best_j = float(xi @ xj), j
        d = float((xi - xs[best_j] + 1e-8).norm())
        total += -math.log(d + 1e-8)
    return total / len(xs)


def test_koleo_plain_and_grouped() -> None:
    g = torch.Generator().manual_seed(3)
    x = torch.randn(8, 6, generator=g)
    assert KoLeoLoss()(x).item() == pytest.approx(_koleo_reference(x), rel=1e-5)
    assert KoLeoLossDistributed()(x).item() == pytest.approx(KoLeoLoss()(x).item(), rel=1e-6)
    grouped = KoLeoLossDistributed(group_size=4)(x).item()
    assert grouped == pytest.approx((_koleo_reference(x[:4]) + _koleo_reference(x[4:])) / 2, rel=1e-5)
    with pytest.raises(ValueError, match="group size 3"):
        KoLeoLossDistributed(group_size=3)(x)


def test_koleo_gradients_flow() -> None:
    x = torch.randn(5, 4, requires_grad=True)
    KoLeoLossDistributed(group_size=5)(x).backward()
    assert x.grad is not None and x.grad.abs().sum() > 0


def _gram_ref(a: torch.Tensor) -> list[list[float]]:
    n = [v / v.norm() for v in a.double()]
    return [[float(u @ v) for v in n] for u in n]


def test_gram_per_image_and_batch() -> None:
    g = torch.Generator().manual_seed(4)
    s = torch.randn(2, 3, 4, generator=g)
    t = torch.randn(2, 3, 4, generator=g)
    # per image: mean over B·N·N entries
    total = 0.0
    for b in range(2):
        gs, gt = _gram_ref(s[b]), _gram_ref(t[b])
        total += sum((gs[i][j] - gt[i][j]) ** 2 for i in range(3) for j in range(3))
    assert GramLoss(img_level=True)(s, t).item() == pytest.approx(total / 18, rel=1e-5)
    # batch level: one 6x6 matrix
    gs, gt = _gram_ref(s.flatten(0, 1)), _gram_ref(t.flatten(0, 1))
    batch = sum((gs[i][j] - gt[i][j]) ** 2 for i in range(6) for j in range(6)) / 36
    assert GramLoss(img_level=False)(s, t).item() == pytest.approx(batch, rel=1e-5)
    # clamps: teacher only, and both
    clamp_t = sum((gs[i][j] - max(gt[i][j], 0.0)) ** 2 for i in range(6) for j in range(6)) / 36
    assert GramLoss(remove_only_teacher_neg=True)(s, t).item() == pytest.approx(clamp_t, rel=1e-5)
    both = sum((max(gs[i][j], 0) - max(gt[i][j], 0)) ** 2 for i in range(6) for j in range(6)) / 36
    assert GramLoss(remove_neg=True)(s, t).item() == pytest.approx(both, rel=1e-5)
    with pytest.raises(ValueError, match="not both"):
        GramLoss(remove_neg=True, remove_only_teacher_neg=True)


def test_gram_gradient_to_student_only() -> None:
    s = torch.randn(2, 3, 4, requires_grad=True)
    t = torch.randn(2, 3, 4, requires_grad=True)
    GramLoss(img_level=True)(s, t).backward()
    assert s.grad is not None and t.grad is None
    assert GramLoss(img_level=True)(t.detach(), t.detach()).item() == pytest.approx(0.0, abs=1e-12)


def _sk_official_fp32(t: torch.Tensor, temp: float, iters: int = 3) -> torch.Tensor:
    """The official `SinkhornKnoppTeacher` in float32, verbatim in its arithmetic: no shift, no clamp."""
    Q = torch.exp(t.float() / temp).t()
    B, K = Q.shape[1], Q.shape[0]
    Q /= torch.sum(Q)
    for _ in range(iters):
        Q /= torch.sum(Q, dim=1, keepdim=True)
        Q /= K
        Q /= torch.sum(Q, dim=0, keepdim=True)
        Q /= B
    Q *= B
    return Q.t()


def test_sinkhorn_divides_subnormal_sums_exactly_as_official() -> None:
    tiny = torch.finfo(torch.float32).tiny  # 1.18e-38, the smallest normal float32
    # max logit 0 at temperature 1: the global-max shift is exactly 0, so exp() is bit-identical to the official
    # one. exp(-92) = 1.1e-40 is subnormal: prototype 1's row sum stays below `tiny` but is not zero.
    t = torch.tensor([[0.0, -92.0], [0.0, -92.0]])
    q = sinkhorn_knopp(t, 1.0, n_iterations=1)
    # hand-computed: Q^T = [[1, 1], [e, e]] / (2 + 2e); each row has two equal entries x, so x / (x + x) = 1/2
    # exactly; every later step keeps every entry equal: the result is 1/2 everywhere
    assert torch.equal(q, torch.full((2, 2), 0.5))
    # a clamp at `tiny` (the old code) gave prototype 1 only e / tiny ~ 1 % of its share after this iteration
    assert (torch.exp(torch.tensor(-92.0)) / 2 * 2 < tiny).item()
    # unequal subnormal entries, and more samples: equal to the official float32 formula bit for bit
    t2 = torch.tensor([[0.0, -91.0, -2.0], [-1.0, -93.5, 0.0], [-0.5, -95.0, -1.0], [-3.0, -90.5, -0.25]])
    rows = torch.exp(t2).t().sum(1) / torch.exp(t2).sum()
    assert 0 < rows[1] < tiny  # the second prototype's row sum is subnormal
    for n in (1, 3):
        assert torch.equal(sinkhorn_knopp(t2, 1.0, n), _sk_official_fp32(t2, 1.0, n))  # old clamp: up to 0.6 off


def test_sinkhorn_zero_mass_rows_and_columns_stay_zero() -> None:
    # exp(-200) underflows to exactly 0 in float32: prototype 1 has no mass at all (official: 0 / 0 = NaN)
    q = sinkhorn_knopp(torch.tensor([[0.0, -200.0], [0.0, -200.0]]), 1.0)
    # hand-computed: Q^T = [[1/2, 1/2], [0, 0]] -> rows [1, 0] -> [[1/4, 1/4], [0, 0]] -> columns 1/4 ->
    # [[1/2, 1/2], [0, 0]] (each iteration the same), x B = 2: every sample puts all its mass on prototype 0
    assert torch.isfinite(q).all() and torch.equal(q, torch.tensor([[1.0, 0.0], [1.0, 0.0]]))
    assert torch.isnan(_sk_official_fp32(torch.tensor([[0.0, -200.0], [0.0, -200.0]]), 1.0)).any()
    # a sample whose scores all underflow: its column sums to 0 and stays 0; the other sample is normalised
    # as if alone: Q^T = [[1/2, 0], [1/2, 0]] -> rows 1/2 -> [[1/2, 0], [1/2, 0]] / K -> columns [1/2, 0] ->
    # [[1/2, 0], [1/2, 0]] / B -> ... x B: sample 0 = [1/2, 1/2], sample 1 = [0, 0]
    q2 = sinkhorn_knopp(torch.tensor([[0.0, 0.0], [-200.0, -200.0]]), 1.0)
    assert torch.isfinite(q2).all() and torch.equal(q2, torch.tensor([[0.5, 0.5], [0.0, 0.0]]))
