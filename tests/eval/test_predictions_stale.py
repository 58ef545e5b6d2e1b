"""An earlier run's predictions.csv does not outlive a rerun of the task into the same folder.

`geodino probe --compare` pairs predictions.csv files wherever they exist (McNemar p per top-1 row); a file left
by an earlier single-label run next to a rerun that failed, or that writes none (multi-label), was paired as if
the new run had made it.
"""

from __future__ import annotations

import pytest

from geodino.errors import InputError
from geodino.eval.classification import ClassificationConfig, run_classification
from geodino.eval.classification_predictions import PREDICTIONS_FILE
from geodino.eval.datasets import DatasetConfig
from tests.eval.tiny_backbone import TinyBackbone


def _old_predictions(out):
    out.mkdir(parents=True, exist_ok=True)
    (out / PREDICTIONS_FILE).write_text("id,true,knn\n#0,a,a\n")


def test_a_multilabel_rerun_removes_an_earlier_single_label_runs_predictions(tmp_path, bigearthnet_cfg):
    _old_predictions(tmp_path / "out")
    run_classification(TinyBackbone(in_chans=12, spec="tiny"), bigearthnet_cfg, tmp_path / "out")
    assert (tmp_path / "out" / "classification.json").is_file()
    assert not (tmp_path / "out" / PREDICTIONS_FILE).exists()


def test_a_failed_rerun_removes_an_earlier_runs_predictions(tmp_path):
    cfg = ClassificationConfig(data=DatasetConfig(name="image_folder", root=str(tmp_path / "missing")), progress=False)
    _old_predictions(tmp_path / "out")
    with pytest.raises(InputError, match=r"dataset folder .*missing for 'image_folder' not found"):
        run_classification(TinyBackbone(spec="tiny"), cfg, tmp_path / "out")
    assert not (tmp_path / "out" / PREDICTIONS_FILE).exists()
