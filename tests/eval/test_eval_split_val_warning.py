"""eval_split=val scores the linear head on the split that chose it: the probe warned only when a refit had been
asked (and skipped), so the default heads' optimistic val number went out without a word."""

from __future__ import annotations

import warnings

import pytest

from geodino.eval.classification import ClassificationConfig, run_classification
from geodino.eval.datasets import DatasetConfig
from geodino.eval.features import FeatureConfig
from geodino.eval.linear import LinearConfig
from tests.eval.class_folder import class_folder
from tests.eval.tiny_backbone import TinyBackbone


def _cfg(root, eval_split: str, linear: bool = True) -> ClassificationConfig:
    cfg = ClassificationConfig(
        data=DatasetConfig(name="image_folder", root=str(root), val_fraction=0.25, test_fraction=0.25),
        features=FeatureConfig(cache=False),
        linear=LinearConfig(lrs=[0.1], weight_decays=[0.0], n_last_blocks=[1], avgpool=[False], min_iterations=5),
        eval_split=eval_split,
        progress=False,
        plots=False,
    )
    cfg.linear.enabled = linear
    cfg.knn.ks = [1]
    return cfg


def test_the_default_linear_head_scored_on_val_is_flagged_optimistic_and_knn_alone_or_test_is_quiet(tmp_path):
    root = class_folder(tmp_path / "imgs", n=8, size=8)
    with pytest.warns(UserWarning) as caught:
        run_classification(TinyBackbone(spec="tiny"), _cfg(root, "val"), tmp_path / "a")
    assert [str(w.message) for w in caught if "eval_split" in str(w.message)] == [
        "classification: eval_split=val, so linear is chosen and scored on val, an optimistic number: give the data "
        "a test split for an unbiased one"
    ]
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        run_classification(TinyBackbone(spec="tiny"), _cfg(root, "test"), tmp_path / "b")
        run_classification(TinyBackbone(spec="tiny"), _cfg(root, "val", linear=False), tmp_path / "c")  # nothing chosen
