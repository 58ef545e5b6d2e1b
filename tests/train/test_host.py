"""geodino.train.host: a log row's device values read in one copy per device."""

from __future__ import annotations

import pytest
import torch

from geodino.train.host import host_floats
from tests.helpers import HostReads


def test_host_floats_keeps_order_and_values_without_scalar_reads() -> None:
    w = torch.ones(3, requires_grad=True)
    row = {"step": 7, "loss": (w * 2).sum(), "lr": 0.5, "norm": torch.tensor([1.25]), "count": torch.tensor(3)}
    with HostReads() as reads:
        out = host_floats(row)
    assert reads.n == 0  # one stacked copy, not an .item() per value
    assert list(out) == ["step", "loss", "lr", "norm", "count"]
    assert out == {"step": 7.0, "loss": 6.0, "lr": 0.5, "norm": 1.25, "count": 3.0}
    assert all(type(v) is float for v in out.values())
    assert host_floats({}) == {} and host_floats({"a": 1}) == {"a": 1.0}


def test_host_floats_reads_each_device_apart(monkeypatch: pytest.MonkeyPatch) -> None:
    """Values on different devices are stacked per device (a CPU value next to GPU ones must not break the row):
    here a `meta` tensor stands in for the second device, and the stack per device is what is checked."""
    stacked: list[set[str]] = []
    real_stack = torch.stack

    def stack(tensors, *a, **kw):  # type: ignore[no-untyped-def]
        stacked.append({t.device.type for t in tensors})
        if tensors[0].device.type == "meta":
            return torch.zeros(len(tensors))
        return real_stack(tensors, *a, **kw)

    monkeypatch.setattr(torch, "stack", stack)
    out = host_floats({"a": torch.tensor(1.0), "b": torch.empty((), device="meta"), "c": torch.tensor(2.0)})
    assert stacked == [{"cpu"}, {"meta"}]
    assert out == {"a": 1.0, "b": 0.0, "c": 2.0}
