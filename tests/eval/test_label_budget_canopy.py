"""Canopy probe label budget: train_fraction keeps a seeded, nested share of the training TILES left after the
val_fraction hold-out; the held-out tiles (or val rasters) stay whole; n_train counts tiles."""

from __future__ import annotations

import json

import pytest
import torch

from geodino.errors import ConfigError
from geodino.eval import canopy
from geodino.eval.canopy import CanopyProbeConfig, run_canopy
from geodino.eval.label_budget import plain_budget
from tests.eval.conftest import canopy_dpt_cfg
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_canopy import write_chm, write_image


def _cfg(tmp_path, **extra) -> CanopyProbeConfig:
    return canopy_dpt_cfg(
        tmp_path,
        crop_size=16,
        stride=16,
        batch_size=4,
        block_size=6,
        block_border=1,
        output="direct",
        progress=False,
        **extra,
    )


@pytest.mark.parametrize(("fraction", "want"), [(0.1, 1), (0.25, 3), (0.5, 6), (1.0, 12)])
def test_counts_are_tiles_rounded_half_up(fraction, want):
    rows, rec = plain_budget(12, fraction, 0, "tiles")
    assert len(rows) == rec["n_train"] == want and rec["n_train_full"] == 12 and rec["unit"] == "tiles"


# a head of a few steps predicts every pixel above the 2 m tree threshold: its degenerate-tree_IoU warning is
# expected here (test_canopy_metrics_json_flags_a_degenerate_tree_iou asserts it)
@pytest.mark.filterwarnings("ignore:canopy probe. every predicted pixel:UserWarning")
def test_end_to_end_fewer_training_tiles_same_validation(tmp_path, monkeypatch):
    write_image(tmp_path / "a.tif")  # 64 px at crop 16: 16 tiles, 4 held out, 12 trained on
    write_chm(tmp_path / "a_CHM.tif")
    seen: list[torch.Tensor] = []
    real = canopy._train

    def spy(backbone, cfg, tiles, *args):
        seen.append(tiles["image"].clone())
        return real(backbone, cfg, tiles, *args)

    monkeypatch.setattr(canopy, "_train", spy)
    runs = {
        f: run_canopy(tiny_backbone(), _cfg(tmp_path, train_fraction=f), tmp_path / str(f)) for f in (1.0, 0.5, 0.25)
    }
    assert [t.shape[0] for t in seen] == [12, 6, 3]
    assert {m["val_tiles"] for m in runs.values()} == {4.0}
    # nested: every tile of the 0.25 run is one of the 0.5 run's, which are the full run's
    rows = lambda small, big: all(any(torch.equal(s, b) for b in big) for s in small)
    assert rows(seen[2], seen[1]) and rows(seen[1], seen[0])
    assert "n_train" not in runs[1.0] and runs[0.5]["n_train"] == 6.0 and runs[0.5]["train_fraction"] == 0.5
    saved = json.loads((tmp_path / "0.25" / "canopy_metrics.json").read_text())
    assert saved["label_budget"] == {
        "train_fraction": 0.25,
        "seed": 0,
        "unit": "tiles",
        "n_train_full": 12,
        "n_train": 3,
        "kept_fraction": 0.25,
    }
    assert "label_budget" not in json.loads((tmp_path / "1.0" / "canopy_metrics.json").read_text())


def test_an_out_of_range_fraction_is_one_line(tmp_path):
    with pytest.raises(ConfigError, match=r"canopy train_fraction=1\.5"):
        run_canopy(tiny_backbone(), _cfg(tmp_path, train_fraction=1.5), tmp_path / "out")


def test_suite_key_names_the_task(tmp_path):
    from geodino.eval.runner import SuiteConfig, parse_tasks

    cfg = SuiteConfig(tasks={"chm": {"type": "canopy", "train_fraction": 0.0}})
    with pytest.raises(ConfigError, match=r"tasks\.chm\.train_fraction=0"):
        parse_tasks(cfg, tmp_path)
