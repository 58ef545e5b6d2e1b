"""The loss terms inside a bf16-mixed step's autocast compute what they compute outside it (float32, as the official
losses do under FSDP2 mixed precision, which has no autocast). The DINO cross-entropy is an einsum and the Gram
matrices a matmul: autocast ran both in bf16 (the DINO loss came back as a bf16 tensor rounded to 1/16 at ln K, and
the Gram loss of a student close to its teacher at ~3x its value). CPU autocast casts the same ops as CUDA's."""

from __future__ import annotations

import pytest
import torch

from geodino.losses import DINOLoss, GramLoss


def _bf16_autocast() -> torch.autocast:
    return torch.autocast("cpu", dtype=torch.bfloat16)


@pytest.mark.parametrize("ignore_diagonal", [False, True])
def test_dino_loss_is_float32_under_autocast(ignore_diagonal: bool) -> None:
    g = torch.Generator().manual_seed(0)
    k = 1024
    student = torch.randn(2 if ignore_diagonal else 6, 8, k, generator=g)
    teacher = torch.softmax(torch.randn(2, 8, k, generator=g) / 0.04, dim=-1)
    loss = DINOLoss(k)
    plain = loss(student, teacher, ignore_diagonal=ignore_diagonal)
    with _bf16_autocast():
        mixed = loss(student, teacher, ignore_diagonal=ignore_diagonal)
    assert mixed.dtype == torch.float32
    assert torch.equal(mixed, plain)


def test_dino_loss_gradient_is_float32_under_autocast() -> None:
    g = torch.Generator().manual_seed(1)
    k = 512
    teacher = torch.softmax(torch.randn(2, 4, k, generator=g) / 0.04, dim=-1)
    grads = []
    for mixed in (False, True):
        student = torch.randn(4, 4, k, generator=torch.Generator().manual_seed(2)).requires_grad_(True)
        with torch.autocast("cpu", dtype=torch.bfloat16, enabled=mixed):
            loss = DINOLoss(k)(student, teacher)
        loss.backward()  # outside autocast, as the steps run it (tests/train/test_backward_outside_autocast.py)
        grads.append(student.grad)
    assert torch.equal(grads[0], grads[1])


@pytest.mark.parametrize("img_level", [False, True])
def test_gram_loss_of_a_close_student_is_float32_under_autocast(img_level: bool) -> None:
    g = torch.Generator().manual_seed(3)
    teacher = torch.randn(4, 64, 96, generator=g) + 2.0  # positively correlated patch tokens
    student = (teacher + 0.05 * torch.randn(4, 64, 96, generator=g)).requires_grad_(True)
    loss = GramLoss(img_level=img_level)
    plain = loss(student, teacher)
    (grad_plain,) = torch.autograd.grad(plain, student)
    with _bf16_autocast():
        mixed = loss(student, teacher)
    (grad_mixed,) = torch.autograd.grad(mixed, student)
    assert torch.equal(mixed, plain)
    assert torch.equal(grad_mixed, grad_plain)
