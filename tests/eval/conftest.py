"""Set-ups shared by the probe tests of this folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def bigearthnet_cfg(tmp_path: Path):
    """A ClassificationConfig of a tiny BigEarthNet layout written under tmp_path/ben (multi-label, 12 bands):
    32 px images, no feature cache, kNN k=2, one linear grid point of 5 iterations, no progress bars."""
    from geodino.eval.classification import ClassificationConfig
    from geodino.eval.datasets import DatasetConfig
    from geodino.eval.features import FeatureConfig
    from geodino.eval.linear import LinearConfig
    from tests.eval.test_datasets import make_bigearthnet

    make_bigearthnet(tmp_path / "ben")
    cfg = ClassificationConfig(
        data=DatasetConfig(name="bigearthnet", root=str(tmp_path / "ben")),
        features=FeatureConfig(cache=False, image_size=32),
        linear=LinearConfig(lrs=[0.1], weight_decays=[0.0], n_last_blocks=[1], avgpool=[False], min_iterations=5),
        progress=False,
    )
    cfg.knn.ks = [2]
    return cfg


@pytest.fixture
def spec_backbones(monkeypatch) -> None:
    """Every probe backbone spec loads as a TinyBackbone of that spec, and the spec check is skipped: suites and
    comparisons run with made-up specs ('main', 'other') and read no checkpoint."""
    from geodino.eval import runner
    from tests.eval.tiny_backbone import TinyBackbone

    monkeypatch.setattr(runner, "load_probe_backbone", lambda spec, *a: TinyBackbone(spec=spec))
    monkeypatch.setattr("geodino.backbones.load.check_spec", lambda spec: None)


@pytest.fixture
def tiny_suite_cfg(tmp_path: Path, spec_backbones):
    """The tiny image-folder suite of tests/eval/test_runner.py (chips under tmp_path) as a SuiteConfig without
    progress bars, with `spec_backbones` in place: a comparison's set-up."""
    from geodino.config import load_config
    from geodino.eval.runner import SuiteConfig
    from tests.eval.test_runner import _suite

    return load_config(SuiteConfig, _suite(tmp_path), ["progress=false"])
