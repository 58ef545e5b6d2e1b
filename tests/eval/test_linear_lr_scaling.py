"""The linear probe scales its learning rates by the configured batch (lr * batch_size / 256), as the official
DINOv3 linear eval (`scale_lr(lrs, batch_size)`, with an infinite drop_last loader that always fills the batch),
also when the training set is smaller than the batch. Before, it scaled by min(batch_size, N) / 256, so on a
tiny set the grid's learning rates were N / batch_size of the official ones."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

from geodino.eval.linear import LinearConfig, _train_heads


def one_step(batch_size: int, scale: bool = True) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(w0, w1, grad of the mean CE at w0) for one plain SGD step on N=10 samples (one head, lr 0.1)."""
    g = torch.Generator().manual_seed(0)
    x = torch.randn(10, 6, generator=g)
    y = torch.randint(0, 3, (10,), generator=g)
    cfg = LinearConfig(epochs=1, min_iterations=1, batch_size=batch_size, momentum=0.0, scale_lr_with_batch=scale)
    w1, _ = _train_heads(x, y, torch.tensor([0.1]), torch.tensor([0.0]), 3, cfg, torch.Generator().manual_seed(1))
    w0 = (torch.randn(1, 6, 3, generator=torch.Generator().manual_seed(1)) * 0.01)[0].requires_grad_(True)
    F.cross_entropy(x @ w0, y).backward()
    return w0.detach(), w1[0], w0.grad


@pytest.mark.parametrize("batch_size", [256, 512])
def test_lr_is_scaled_by_the_configured_batch_when_n_is_smaller(batch_size):
    w0, w1, grad = one_step(batch_size)
    assert torch.allclose(w1, w0 - 0.1 * batch_size / 256 * grad, atol=1e-7)


def test_scaling_off_uses_the_lr_as_given():
    w0, w1, grad = one_step(512, scale=False)
    assert torch.allclose(w1, w0 - 0.1 * grad, atol=1e-7)
