"""A `train_per_class` that the training split of a torchgeo dataset cannot give is refused by the suite before
any task runs, as for image folders: EuroSAT knows each image's class from its file list (torchvision's ImageFolder
`targets`, unread), BigEarthNet is multi-label. Both were refused only when their task ran, after earlier tasks."""

from __future__ import annotations

import pytest

from geodino.config import load_config
from geodino.errors import ConfigError, InputError
from geodino.eval.datasets import DatasetConfig, build_dataset
from geodino.eval.runner import SuiteConfig, run_suite
from tests.eval.class_folder import class_folder
from tests.eval.test_datasets import make_bigearthnet, make_eurosat

_TASK = """
  {name}:
    type: classification{budget}
    data: {data}
    features: {{batch_size: 64}}
    knn: {{ks: [1]}}
    linear: {{lrs: [0.1], weight_decays: [0.0], epochs: 1, min_iterations: 1}}"""


def _suite(tmp_path, data: str, budget: str):
    class_folder(tmp_path / "imgs", classes=("a", "b"), n=4, size=8)
    first = _TASK.format(name="first", budget="", data=f"{{name: image_folder, root: {tmp_path / 'imgs'}}}")
    second = _TASK.format(name="tg", budget=f"\n    train_per_class: {budget}", data=data)
    path = tmp_path / "suite.yaml"
    path.write_text(f"name: tg\ntasks:{first}{second}\n")
    return load_config(SuiteConfig, path, ["progress=false"])


def test_eurosat_labels_are_known_unread(tmp_path):
    make_eurosat(tmp_path / "eurosat")
    ds = build_dataset(DatasetConfig(name="eurosat", root=str(tmp_path / "eurosat")), "train")
    assert sorted(ds.labels) == [0, 0, 1, 1]  # two training images of each class (make_eurosat)
    assert [ds.labels[i] for i in ds.indices] == [int(ds[j]["label"]) for j in range(len(ds))]


@pytest.mark.parametrize(
    "make, name, budget, error, line",
    [
        (make_eurosat, "eurosat", 3, InputError, "train_per_class=3 is more than the 2 training images of class"),
        (make_bigearthnet, "bigearthnet", 1, ConfigError, "train_per_class=1 needs single-label classes"),
    ],
)
def test_suite_refuses_the_budget_before_any_task(tmp_path, tiny_probe_backbone, make, name, budget, error, line):
    make(tmp_path / name)
    cfg = _suite(tmp_path, f"{{name: {name}, root: {tmp_path / name}}}", budget)
    with pytest.raises(error) as info:
        run_suite(cfg, "tiny", tmp_path / "out")
    assert not (tmp_path / "out" / "first").exists()  # the first task did not run
    msg = str(info.value)
    assert msg.startswith(f"tasks.tg.{line}") and "\n" not in msg


def test_a_budget_that_fits_is_not_refused(tmp_path, tiny_probe_backbone):
    from geodino.eval.runner import parse_tasks
    from geodino.eval.runner_inputs import precheck_inputs

    make_eurosat(tmp_path / "eurosat")
    cfg = _suite(tmp_path, f"{{name: eurosat, root: {tmp_path / 'eurosat'}}}", 2)
    task = parse_tasks(cfg, tmp_path / "out")["tg"]
    precheck_inputs("tg", task.type, task.cfg, task.data)  # no error: 2 per class is what EuroSAT has
