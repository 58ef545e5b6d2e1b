"""A bad `features.fast` is refused when the config is read, naming the key as the user wrote it (`features.fast`,
in a suite `tasks.<name>.features.fast`): it was refused only once its task extracted, as 'fast path mode=...'
naming no key. The short-backbone `layers=four_last` warning names the key that silences it in a suite task
(`tasks.<name>.features.layers`, a segmentation task's `tasks.<name>.layers`); outside a suite, `layers`."""

from __future__ import annotations

import warnings

import pytest

from geodino.backbones.layers import layer_indices
from geodino.errors import ConfigError
from geodino.eval.classification import ClassificationConfig
from geodino.eval.features import FeatureConfig
from geodino.eval.runner_inputs import task_keys_named
from geodino.eval.segmentation import SegmentationProbeConfig
from geodino.models.fast_choice import MODES


def test_feature_config_refuses_an_unknown_fast_mode_naming_the_key():
    with pytest.raises(ConfigError, match=r"^features\.fast='fastest' is not one of auto, off, ") as info:
        FeatureConfig(fast="fastest")
    assert all(m in str(info.value) for m in MODES)
    for ok in ("auto", "off", "Float32", False, True, "int8"):  # YAML off/on read as booleans stay accepted
        assert FeatureConfig(fast=ok).fast == ok  # kept as written: the config hash does not change


def test_geodino_probe_refuses_a_task_fast_mode_before_any_task_runs(tmp_path, capsys):
    from geodino.cli import main

    suite = tmp_path / "suite.yaml"
    suite.write_text(
        f"tasks:\n  cls:\n    type: classification\n    data: {{name: image_folder, root: {tmp_path / 'none'}}}\n"
    )
    out = tmp_path / "out"
    argv = ["probe", "-c", str(suite), "-b", "arch:vit_tiny?depth=1", "-o", str(out), "--no-progress"]
    assert main([*argv, "tasks.cls.features.fast=fastest"]) == 2
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("geodino: error:")]
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("geodino: error: tasks.cls.features.fast='fastest' is not one of auto, off"), lines[0]
    assert not (out / "results.json").exists() and not (out / "cls").exists()


def _short_warning() -> str:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert layer_indices("four_last", 1) == [0]
    (w,) = [str(c.message) for c in caught if "on a backbone with" in str(c.message)]
    return w


@pytest.mark.parametrize(
    ("schema", "key"),
    [(ClassificationConfig, "tasks.eurosat.features.layers"), (SegmentationProbeConfig, "tasks.eurosat.layers")],
)
def test_the_short_backbone_warning_names_the_suite_key(schema, key):
    with task_keys_named("eurosat", schema):
        inside = _short_warning()
    assert inside.startswith(f"{key}=four_last on a backbone with 1 block"), inside
    assert f"pass {key}=last," in inside
    outside = _short_warning()  # the key is reset once the task is done
    assert outside.startswith("layers=four_last on a backbone") and "pass layers=last," in outside, outside


def test_the_suite_key_is_reset_when_the_task_fails():
    with pytest.raises(ConfigError), task_keys_named("t", ClassificationConfig):
        raise ConfigError("features.image_size=3 is bad")
    assert "pass layers=last," in _short_warning()
