"""Detection probe step budget (min_steps) and learning-rate schedule.

Before: the detector trained for `epochs` whatever the tile count (a few images at 512 px are a few steps an
epoch), with no min_steps key and no short-run warning, unlike the dense probes; and a 1-epoch run trained at
0.01x lr throughout (MultiStepLR milestones int(0.6) = int(0.9) = 0 fire before the first step). Now min_steps
raises the epochs once the first epoch has counted the tiles, a run under 300 steps without it warns, and the
schedule (x0.1 at 60 % and 90 % of the settled epochs) starts at the full lr.
"""

from __future__ import annotations

import math
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn
from torch.optim.optimizer import register_optimizer_step_pre_hook

from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.eval.detection import DetectionProbeConfig, run_detection, train_detector
from geodino.eval.runner import SuiteConfig, parse_tasks
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_detection import _scene, _small_cfg


class ToyDetector(nn.Module):
    """Stands in for a torchvision detector in training: one weight, a loss per batch; records the lr per step."""

    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.ones(1))
        self.transform = nn.Identity()  # no `fill`: tiles padded with 0
        self.batches: list[int] = []

    def forward(self, images: list[torch.Tensor], targets: list[dict]) -> dict[str, torch.Tensor]:
        self.batches.append(len(images))
        assert all(t["boxes"].shape[-1] == 4 for t in targets)
        return {"loss": (self.w * torch.stack([im.mean() for im in images]).sum()) ** 2}


def _samples(n: int = 2, size: int = 64) -> list[dict]:
    """`n` images of `size` px (4 tiles of 32 px each at size 64), one box each."""
    return [
        {
            "image": torch.rand(3, size, size),
            "boxes": torch.tensor([[4.0, 4.0, 20.0, 20.0]]),
            "labels": torch.tensor([0]),
            "name": f"s{i}",
        }
        for i in range(n)
    ]


def _train(**cfg_keys) -> tuple[list[float], list[float], list[str], ToyDetector]:
    """Train the toy detector on 2 images of 4 tiles each (8 tiles, batch 3: 3 steps an epoch); returns the loss
    history, the lr of every optimiser step, the warnings and the model."""
    cfg = DetectionProbeConfig(tile_size=32, batch_size=3, lr=1.0, progress=False, **cfg_keys)
    model = ToyDetector()
    lrs: list[float] = []
    handle = register_optimizer_step_pre_hook(lambda opt, args, kwargs: lrs.append(opt.param_groups[0]["lr"]))
    try:
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            history = train_detector(model, _samples(), cfg)
    finally:
        handle.remove()
    return history, lrs, [str(w.message) for w in caught if "optimiser step" in str(w.message)], model


def test_a_short_run_warns_naming_the_step_count():
    history, lrs, warned, model = _train(epochs=2)
    assert len(history) == 2 and len(lrs) == 6 and model.batches == [3, 3, 2] * 2  # batches run across images
    assert len(warned) == 1
    assert warned[0].startswith("detection faster_rcnn head: 6 optimiser steps (2 epochs x 3 per epoch of 8 tiles)")
    assert "set min_steps" in warned[0]


def test_a_run_of_300_steps_by_epochs_alone_is_quiet():
    history, lrs, warned, _ = _train(epochs=100)  # 100 epochs x 3 steps
    assert len(history) == 100 and len(lrs) == 300 and warned == []
    _, lrs, warned, _ = _train(epochs=99)  # 297 steps: still short
    assert len(lrs) == 297 and len(warned) == 1 and "297 optimiser steps" in warned[0]


def test_min_steps_raises_the_epochs_as_computed_by_hand_and_the_schedule_follows():
    history, lrs, warned, _ = _train(epochs=2, min_steps=20)
    epochs = math.ceil(20 / math.ceil(8 / 3))  # 7 epochs of 3 steps
    assert epochs == 7 and len(history) == 7 and len(lrs) == 21 and warned == []  # an explicit budget: quiet
    # x0.1 from epoch int(0.6 * 7) = 4 and again from int(0.9 * 7) = 6, of the settled 7 epochs (not of 2)
    want = [1.0] * 12 + [0.1] * 6 + [0.01] * 3
    assert lrs == pytest.approx(want)
    _, lrs, warned, _ = _train(epochs=10, min_steps=6)  # a budget under the epochs changes nothing
    assert len(lrs) == 30 and warned == []


def test_a_one_epoch_run_trains_at_the_full_learning_rate():
    _, lrs, _, _ = _train(epochs=1)
    assert lrs == [1.0, 1.0, 1.0]  # was 0.01 throughout
    _, lrs, _, _ = _train(epochs=10)
    assert lrs == pytest.approx([1.0] * 18 + [0.1] * 9 + [0.01] * 3)  # unchanged for longer runs


def test_run_detection_warns_and_min_steps_from_a_suite_yaml(tmp_path):
    _scene(tmp_path)  # 64 px at 32 px tiles: 4 tiles, 1 held out, 3 train at batch 3: 1 step an epoch
    with pytest.warns(UserWarning, match=r"detection faster_rcnn head: 1 optimiser step \(1 epoch x 1 per epoch"):
        run_detection(tiny_backbone(), _small_cfg(tmp_path, progress=False, min_steps=0), tmp_path / "a")
    suite = tmp_path / "suite.yaml"
    suite.write_text("name: d\ntasks:\n  d:\n    type: detection\n    train_images: [x]\n    train_boxes: [y]\n")
    suite.write_text(suite.read_text() + "    min_steps: 500\n")
    assert parse_tasks(load_config(SuiteConfig, suite), tmp_path / "out")["d"].cfg.min_steps == 500
    suite.write_text(suite.read_text().replace("500", "-3"))
    with pytest.raises(ConfigError, match=r"^tasks\.d\.min_steps=-3 must be >= 0"):  # the suite names its key
        parse_tasks(load_config(SuiteConfig, suite), Path(tmp_path / "out"))
