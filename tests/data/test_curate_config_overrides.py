"""`data curate --config CFG key=value ...` writes a config.yaml that keeps the run's overrides: it kept only the
sources, so `trainer.max_steps=7` (or an `output_dir=`) given to curate was lost and `geodino pretrain --config
curated/config.yaml` ran the base config's steps into the base's folder + `_curated`. The overrides of the sources
themselves stay out (the curated lists replace the sources)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import yaml
from PIL import Image

from geodino import cli
from geodino.config import load_config
from geodino.train.config import PretrainConfig
from tests.data.test_curate import SPEC


def test_config_yaml_keeps_the_overrides_but_not_those_of_the_sources(tmp_path):
    chips = tmp_path / "chips"
    chips.mkdir()
    rng = np.random.default_rng(0)
    for i in range(4):
        Image.fromarray(rng.integers(0, 255, (32, 32, 3), dtype=np.uint8)).save(chips / f"{i}.png")
    base = tmp_path / "pretrain.yaml"
    base.write_text(yaml.safe_dump({"output_dir": "runs/base", "data": {"sources": [{"type": "images"}]}}))
    out = tmp_path / "cur"
    argv = ["data", "curate", "--config", str(base), "-b", SPEC, "-o", str(out), "--size", "2"]
    overrides = [
        f"data.sources[0].paths=[{chips}]",
        "trainer.max_steps=7",
        "ssl.optim.clip_grad=2.5",
        "output_dir=runs/mine",
    ]
    assert cli.main([*argv, *overrides, "--clusters", "2", "--dedup", "1.01", "--no-progress"]) == 0
    written = yaml.safe_load((out / "config.yaml").read_text())
    assert written["trainer"] == {"max_steps": 7} and written["ssl"] == {"optim": {"clip_grad": 2.5}}
    assert written["output_dir"] == "runs/mine_curated"
    cfg = load_config(PretrainConfig, out / "config.yaml")
    assert cfg.trainer.max_steps == 7 and cfg.ssl.optim.clip_grad == 2.5
    assert [Path(p).name for p in cfg.data.sources[0].paths] == ["curated.parquet"]  # not the override's folder
