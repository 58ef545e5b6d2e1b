"""The torchgeo adapters' errors name the task's key: `data.test_split` (a task's dataset is its `data` key), so
that a suite names it `tasks.<name>.data.test_split`. They said `dataset.test_split=val`, a key no config has: a
LoveDA suite task left at the default test split stopped on 'set dataset.test_split=val', naming no task."""

from __future__ import annotations

import pytest

from geodino.errors import ConfigError
from geodino.eval.datasets import DatasetConfig, build_dataset
from tests.eval.test_datasets import make_loveda

SUITE = """name: x
tasks:
  lv:
    type: segmentation
    data: {{name: loveda, root: {root}}}
    crop_size: 16
    epochs: 1
"""


def test_loveda_test_split_error_names_the_data_key(tmp_path):
    make_loveda(tmp_path / "loveda")
    with pytest.raises(ConfigError, match=r"set data\.test_split=val"):
        build_dataset(DatasetConfig(name="loveda", root=str(tmp_path / "loveda")), "test")


def test_a_suite_names_the_task_key_of_the_loveda_test_split(tmp_path, capsys):
    from geodino.cli import main

    make_loveda(tmp_path / "loveda")
    (tmp_path / "s.yaml").write_text(SUITE.format(root=tmp_path / "loveda"))
    argv = ["probe", "-c", str(tmp_path / "s.yaml"), "-b", "arch:vit_tiny?depth=2&patch_size=8&seed=0"]
    assert main([*argv, "--out", str(tmp_path / "out"), "--no-progress"]) == 2
    lines = [ln for ln in capsys.readouterr().err.splitlines() if ln.startswith("geodino: error:")]
    assert len(lines) == 1 and "set tasks.lv.data.test_split=val" in lines[0], lines
