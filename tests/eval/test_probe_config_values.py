"""Probe keys whose mistyped values ran and reported numbers: a negative or NaN `data.scale` (read as 0, the default
rule: the user's factor silently ignored), `knn.temperature` <= 0 (similarities divided by zero or votes inverted),
negative or NaN `linear.lrs`, negative `linear.weight_decays` or `linear.epochs`, `linear.batch_size=0`. Each is
one line naming the task's key when the suite is read."""

from __future__ import annotations

import math

import pytest

from geodino.errors import ConfigError
from geodino.eval.classification import ClassificationConfig, KNNConfig
from geodino.eval.linear import LinearConfig
from geodino.eval.runner import task_config
from geodino.eval.scaling import check_data_offset


@pytest.mark.parametrize(
    ("scale", "offset", "match"),
    [(-1.0, 0.0, r"data\.scale=-1 must be a positive"), (math.nan, 0.0, r"data\.scale=nan must be a positive"),
     (1e-4, math.inf, r"data\.offset=inf must be a finite number")],
)  # fmt: skip
def test_negative_or_non_finite_data_scale_is_refused(scale, offset, match):
    with pytest.raises(ConfigError, match=match):
        check_data_offset(scale, offset, ("data.scale", "data.offset"))


def test_the_default_and_a_real_scale_still_pass():
    check_data_offset(0.0, 0.0)  # 0: the backbone's recorded scale, else by dtype
    check_data_offset(2.75e-5, -0.2)


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [({"lrs": [0.01, -0.1]}, r"linear\.lrs=\[0\.01, -0\.1\] must list positive"),
     ({"lrs": [math.nan]}, r"linear\.lrs=\[nan\]"),
     ({"weight_decays": [-1.0]}, r"linear\.weight_decays=\[-1\.0\] must list numbers >= 0"),
     ({"epochs": -1}, r"linear\.epochs=-1 must be a whole number >= 0"),
     ({"batch_size": 0}, r"linear\.batch_size=0 must be a whole number >= 1"),
     ({"momentum": 1.0}, r"linear\.momentum=1\.0 must be in \[0, 1\)")],
)  # fmt: skip
def test_linear_values_no_head_trains_with_are_refused(kwargs, match):
    with pytest.raises(ConfigError, match=match):
        LinearConfig(**kwargs)


def test_linear_epochs_zero_still_means_min_iterations_only():
    assert LinearConfig(epochs=0).epochs == 0 and LinearConfig().lrs


@pytest.mark.parametrize("temperature", [0.0, -1.0, math.nan])
def test_knn_temperature_must_be_positive(temperature):
    with pytest.raises(ConfigError, match=r"knn\.temperature=.* must be a positive number"):
        KNNConfig(temperature=temperature)


def test_a_suite_names_the_task_of_a_bad_value():
    with pytest.raises(ConfigError, match=r"knn\.temperature=0\.0 must be a positive number"):
        task_config(ClassificationConfig, {"knn": {"temperature": 0.0}}, "tasks.mine")
