"""A training or distillation checkpoint that saved no normalisation record takes its data config's."""

from __future__ import annotations

import pytest

from geodino.models.checkpoints import normalization_of_training
from geodino.models.checkpoints.distill import _normalization as distill_normalization

IMAGES = {"data": {"sources": [{"type": "images", "paths": ["unused"]}]}}  # ImageNet statistics, files not read


def test_the_data_configs_record_names_the_run_that_used_it():
    pretrained, why = normalization_of_training({"config": IMAGES})
    distilled, why_d = distill_normalization({"config": IMAGES})
    assert why == why_d == ""
    assert pretrained["mean"] == distilled["mean"] == [0.485, 0.456, 0.406]
    assert pretrained["origin"] == "pretraining data (sensor imagenet)"
    assert distilled["origin"] == "distillation data (sensor imagenet)"


def test_a_saved_record_wins_over_the_data_config():
    record, _ = normalization_of_training({"normalization": {"mean": [0.1], "std": [0.2]}, "config": IMAGES})
    assert record["mean"] == [0.1]


@pytest.mark.parametrize("config", [None, "not a mapping", {}, {"data": {}}])
def test_no_data_config_says_so(config):
    expected = (None, "the checkpoint holds no data config")
    assert normalization_of_training({"config": config}) == expected
    assert distill_normalization({"config": config}) == expected
