"""Probes and the fast path leave the caller's global random streams where they were (a notebook's own
sampling must not depend on whether it ran a probe in between)."""

from __future__ import annotations

import random

import numpy as np
import torch

from geodino.eval.seeding import keeps_global_rng


def _draw() -> tuple:
    return random.random(), float(np.random.rand()), float(torch.rand(()))


def _expected(seed: int) -> tuple:
    random.seed(seed), np.random.seed(seed), torch.manual_seed(seed)
    return _draw()


def test_keeps_global_rng_restores_python_numpy_and_torch():
    @keeps_global_rng
    def probe() -> int:
        random.seed(0), np.random.seed(0), torch.manual_seed(0)  # what the probes do for their heads
        _draw()
        return 7

    expected = _expected(11)
    random.seed(11), np.random.seed(11), torch.manual_seed(11)
    assert probe() == 7
    assert _draw() == expected
    for name in ("run_classification", "run_canopy", "run_segmentation", "run_detection", "run_prepared"):
        module = {"run_prepared": "runner"}.get(name, name.removeprefix("run_"))
        fn = getattr(__import__(f"geodino.eval.{module}", fromlist=[name]), name)
        assert getattr(fn, "__wrapped__", None) is not None, name  # each entry point is wrapped


def test_preparing_the_fast_path_draws_nothing_from_the_global_generator():
    from geodino.models import build_model
    from geodino.models.frozen import fast_path

    model = build_model("vit_tiny", depth=1).eval()
    torch.manual_seed(3)
    expected = torch.rand(4)
    torch.manual_seed(3)
    fast_path(model, mode="float32", compile=False)
    assert torch.equal(torch.rand(4), expected)
