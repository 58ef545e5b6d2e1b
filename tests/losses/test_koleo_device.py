"""KoLeo over gathered features builds its index tensors on the features' device.

`KoLeoLossDistributed`'s gathered path (groups spanning several processes' batches) masked each sample's own column
with `torch.arange` index tensors made on the host: indexing a GPU tensor with them copies them over from pageable
memory, which waits for the device, once per global crop every step. The meta device shows it without a GPU: a host
index tensor meets meta features in the same op. One process stands in for rank 1 of 2 (the gather returns the
other rank's features first)."""

from __future__ import annotations

from typing import Any

import pytest
import torch
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils._pytree import tree_leaves

import geodino.losses.koleo as koleo


class _HostTensorsInDeviceOps(TorchDispatchMode):
    """Records every op that mixes a host tensor of one or more dimensions with tensors on another device."""

    def __init__(self) -> None:
        super().__init__()
        self.ops: list[str] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        tensors = [t for t in tree_leaves((args, kwargs or {})) if isinstance(t, torch.Tensor)]
        devices = {t.device.type for t in tensors if not (t.device.type == "cpu" and t.ndim == 0)}
        if len(devices) > 1:
            self.ops.append(str(func))
        return func(*args, **(kwargs or {}))


@pytest.mark.parametrize("topk", [1, 2])
def test_gathered_koleo_indexes_on_the_features_device(monkeypatch: pytest.MonkeyPatch, topk: int) -> None:
    import torch.distributed.nn.functional as dist_fn

    monkeypatch.setattr(koleo, "group_world_size", lambda group=None: 2)
    monkeypatch.setattr(koleo, "group_rank", lambda group=None: 1)
    monkeypatch.setattr(dist_fn, "all_gather", lambda x, group=None: [x + 1.0, x])
    loss = koleo.KoLeoLossDistributed(topk=topk, group_size=8)  # 2 ranks x 4 samples: one group over both
    x = torch.randn(4, 16, device="meta", requires_grad=True)
    with _HostTensorsInDeviceOps() as mixed:
        out = loss(x)
        out.backward()
    assert out.device.type == "meta" and out.ndim == 0
    assert mixed.ops == []
