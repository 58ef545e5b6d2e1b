"""trainer.precision=auto: bf16-mixed on GPUs that compute bf16 natively, 16-mixed on older ones, 32-true on CPU."""

from __future__ import annotations

import pytest
import torch

from geodino.train.config import CheckpointConfig, TrainerConfig
from geodino.train.trainer import _strategy


@pytest.mark.parametrize(("native", "want"), [(True, "bf16-mixed"), (False, "16-mixed")])
def test_auto_precision_follows_the_gpus_bf16(monkeypatch, native: bool, want: str) -> None:
    """A V100 or T4 (compute capability 7.x) only emulates bf16: bf16-mixed ran there with slow matrix products and
    SDPA's math fallback; float16 with a loss scaler is their mixed precision."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    asked = []

    def supported(including_emulation: bool = True) -> bool:
        asked.append(including_emulation)
        return native

    monkeypatch.setattr(torch.cuda, "is_bf16_supported", supported)
    cfg = TrainerConfig(accelerator="gpu", devices=1, strategy="auto", precision="auto")
    assert _strategy(cfg, CheckpointConfig())[1] == want
    assert asked == [False]  # native support only, not emulation


def test_auto_precision_on_cpu_and_explicit_choices_kept(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: False)
    assert _strategy(TrainerConfig(accelerator="cpu", strategy="auto", precision="auto"), CheckpointConfig())[1] == (
        "32-true"
    )
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    cfg = TrainerConfig(accelerator="gpu", devices=1, strategy="auto", precision="bf16-mixed")
    assert _strategy(cfg, CheckpointConfig())[1] == "bf16-mixed"  # asked for: honoured
