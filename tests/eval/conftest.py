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
