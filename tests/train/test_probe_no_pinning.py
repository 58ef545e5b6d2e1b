"""Pretraining's one-batch probe runs on every rank before Lightning gives each rank its GPU: a pinned probe loader
would make a CUDA context on GPU 0 in every rank, so the probe never pins, also when the run trains on CUDA."""

from __future__ import annotations

from typing import Any

import pytest

from geodino.config import load_config
from geodino.train.pretrain import PretrainConfig
from geodino.train.pretrain_build import loader_factory, probe_data
from tests.train.conftest import write_config


class _Stop(Exception):
    """Raised by the stand-in loader once its arguments are recorded."""


@pytest.mark.parametrize("accelerator", ["gpu", "auto"])
def test_the_probe_loader_is_not_pinned_on_cuda(tiny_data, tmp_path, monkeypatch, accelerator) -> None:
    """On a CUDA run (accelerator gpu, or auto with CUDA seen) the training loader pins, the probe's does not."""
    import torch

    import geodino.data.loaders as loaders

    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    calls: list[dict[str, Any]] = []

    def fake_loader(*args: Any, **kw: Any) -> Any:
        calls.append(kw)
        raise _Stop

    monkeypatch.setattr(loaders, "build_ssl_loader", fake_loader)
    cfg = load_config(
        PretrainConfig,
        write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data),
        [f"trainer.accelerator={accelerator}", "trainer.precision=bf16-mixed"],
    )
    with pytest.raises(_Stop):
        loader_factory(cfg)(start_step=0, rank=0, world_size=1)
    assert calls[-1]["pin_memory"] is True  # the training loader pins on CUDA
    with pytest.raises(_Stop):
        probe_data(cfg)
    assert calls[-1]["pin_memory"] is False
    assert calls[-1]["max_steps"] == 1
