"""Training a probe head reads the loss on the host once per epoch, not twice per step.

Each read of a device value (`bool(torch.isfinite(loss))`, `float(loss)`) waits for the GPU to finish the step, so
the host cannot prepare the next batch meanwhile; the losses stay on the device and are read in one copy at the end
of each epoch, where a non-finite one still stops the probe with its one line. The optimiser is AdamW's fused kernel
here (whose step counters stay tensors), so every read counted is `train_head`'s own."""

from __future__ import annotations

import functools

import pytest
import torch
from torch import nn

from geodino.errors import TrainingError
from geodino.eval.head_training import FeatureStore, train_head
from tests.eval.dense_backbone import tiny_backbone
from tests.helpers import HostReads

EPOCHS, TILES, BATCH = 2, 6, 2


def _store() -> FeatureStore:
    tiles = torch.rand(TILES, 3, 16, 16, generator=torch.Generator().manual_seed(0))
    return FeatureStore.from_tiles(tiny_backbone(), tiles, "last", "memory", progress=False)


def _loss(scale: float):
    targets = torch.randn(TILES, 1, generator=torch.Generator().manual_seed(1))

    def loss_fn(head: nn.Module, maps: list[torch.Tensor], cls: list[torch.Tensor], idx: list[int]) -> torch.Tensor:
        return scale * ((head(cls[-1]) - targets[idx]) ** 2).mean()

    return loss_fn


@pytest.fixture
def fused_adamw(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(torch.optim, "AdamW", functools.partial(torch.optim.AdamW, fused=True))


@pytest.mark.usefixtures("fused_adamw")
def test_a_head_trains_without_reading_the_loss_every_step() -> None:
    store, head = _store(), nn.Linear(192, 1)
    with HostReads() as reads:
        history = train_head(
            head, store, _loss(1.0), epochs=EPOCHS, batch_size=BATCH, lr=1e-2, weight_decay=0.0, seed=0
        )
    assert reads.n == 0  # before: 2 per step, 12 here
    assert len(history) == EPOCHS and all(v > 0 for v in history)


@pytest.mark.usefixtures("fused_adamw")
def test_a_non_finite_loss_still_stops_the_training() -> None:
    store, head = _store(), nn.Linear(192, 1)
    with pytest.raises(TrainingError, match=r"non-finite loss (nan|inf) at epoch 0; lower lr \(now 0.01\)"):
        train_head(head, store, _loss(float("nan")), epochs=EPOCHS, batch_size=BATCH, lr=1e-2, weight_decay=0.0, seed=0)
