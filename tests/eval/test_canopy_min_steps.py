"""canopy min_steps from a suite YAML: the short-run warning fires exactly when the steps fall below 300 and no
min_steps was given; a negative min_steps (silently treated as 0 before) is refused before anything runs."""

from __future__ import annotations

import warnings
from pathlib import Path

import pytest

from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.eval.canopy import CanopyProbeConfig, train_epochs
from geodino.eval.runner import SuiteConfig, parse_tasks

SUITE = """name: can
tasks:
  c:
    type: canopy
    train_images: [rgb]
    train_chms: [chm]
    epochs: {epochs}
    batch_size: 4
{extra}"""


def _task(tmp_path: Path, epochs: int, extra: str = "") -> CanopyProbeConfig:
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(epochs=epochs, extra=extra))
    return parse_tasks(load_config(SuiteConfig, path), tmp_path / "out")["c"].cfg


def _warned(cfg: CanopyProbeConfig, n_tiles: int) -> tuple[int, bool]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        epochs = train_epochs(cfg, n_tiles)
    return epochs, any("canopy head" in str(w.message) for w in caught)


@pytest.mark.parametrize(
    "epochs,extra,want",
    [
        (2, "", (2, True)),  # 6 steps, no budget: warned
        (99, "", (99, True)),  # 297 steps: still below 300
        (100, "", (100, False)),  # 300 steps by epochs alone
        (2, "    min_steps: 500\n", (167, False)),  # the budget raises the epochs
        (2, "    min_steps: 6\n", (2, False)),  # an explicit small budget is taken as meant
    ],
)
def test_short_run_warning_from_a_yaml_suite(tmp_path, epochs, extra, want):
    assert _warned(_task(tmp_path, epochs, extra), 12) == want  # 12 tiles, batch 4: 3 steps an epoch


def test_negative_min_steps_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="min_steps=-5 must be >= 0"):
        _task(tmp_path, 2, "    min_steps: -5\n")
    with pytest.raises(ConfigError, match="min_steps=-1"):
        CanopyProbeConfig(min_steps=-1).validate()


def test_min_steps_and_its_warning_are_in_the_config_docstring():
    doc = CanopyProbeConfig.__doc__ or ""
    assert "min_steps" in doc and "300 steps" in doc
