"""The suite precheck opens every split of a named dataset that its task will build (classification: train, val,
test; segmentation and detection: train and test), so a missing or empty test split stops the suite before an
earlier task runs, in one line naming `tasks.<name>.data` and the split; the advice of data and label-budget errors
names the keys a suite writes (`tasks.<name>.data.test_split`, `tasks.<name>.train_fraction`)."""

from __future__ import annotations

import pytest
import torch

from geodino.errors import ConfigError, InputError
from geodino.eval import runner
from geodino.eval.classification import ClassificationConfig
from geodino.eval.datasets import DATASETS, DatasetConfig, build_dataset
from geodino.eval.label_budget import budget_indices
from geodino.eval.runner_inputs import name_task_keys, precheck_inputs
from tests.eval.class_folder import class_folder

TASK = {"type": "classification", "features": {"cache": False}, "knn": {"ks": [1]}, "linear": {"enabled": False}}


def test_a_missing_test_split_stops_the_suite_before_the_first_task(tmp_path, monkeypatch, tiny_probe_backbone):
    class_folder(tmp_path / "a", n=4, size=8)
    class_folder(tmp_path / "b" / "train", n=4, size=8)
    class_folder(tmp_path / "b" / "val", n=4, size=8)  # no test/: eval_split=test (the default) needs it
    ran = []
    monkeypatch.setattr(runner, "_call_task", lambda fn, *a: ran.append(fn.__name__))
    tasks = {n: {**TASK, "data": {"name": "image_folder", "root": str(tmp_path / n)}} for n in ("a", "b")}
    with pytest.raises(InputError) as info:
        runner.run_suite(runner.SuiteConfig(progress=False, tasks=tasks), "tiny", tmp_path / "out")
    msg = str(info.value)
    assert ran == []  # before: task a ran (and wrote its results), then task b failed on its test split
    assert msg.startswith(f"tasks.b.data (test split): split folder {tmp_path / 'b' / 'test'} not found"), msg
    assert "set tasks.b.data.test_split to another folder" in msg and msg.endswith("tasks.b.eval_split=val")
    tasks["b"]["eval_split"] = "val"  # no test split built: the precheck opens train and val only
    parsed = runner.parse_tasks(runner.SuiteConfig(progress=False, tasks=tasks), tmp_path / "out")
    precheck_inputs("b", "classification", parsed["b"].cfg, None)


def test_an_empty_split_folder_is_one_line_not_an_index_error(tmp_path):
    class_folder(tmp_path / "train", n=2, size=8)
    (tmp_path / "test" / "dark").mkdir(parents=True)  # class folders, no images
    with pytest.raises(InputError, match=r"^no class folders with images in split folder .*test; expected <class>/"):
        build_dataset(DatasetConfig(root=str(tmp_path)), "test")


def test_a_named_dense_dataset_is_opened_on_its_scored_split(tmp_path, monkeypatch):
    """Segmentation and detection score a named dataset's test split: its error names the task and the split."""
    from geodino.eval.segmentation import SegmentationProbeConfig

    built = []

    def fake(cfg: DatasetConfig, split: str):
        built.append(split)
        if split == "test":
            raise ConfigError("this test split has no masks; set data.test_split=val")

    monkeypatch.setitem(DATASETS, "fake_seg", fake)
    seg = SegmentationProbeConfig(data=DatasetConfig(name="fake_seg", root=str(tmp_path)))
    with pytest.raises(ConfigError) as info:
        precheck_inputs("lc", "segmentation", seg, None)
    assert built == ["train", "test"]  # val is never used by a dense probe: not opened
    assert str(info.value) == (
        "tasks.lc.data (test split): this test split has no masks; set tasks.lc.data.test_split=val"
    )


def test_an_unknown_dataset_name_names_the_key_a_config_writes():
    with pytest.raises(ConfigError, match=r"^data\.name='imagefolder' is not a known dataset; did you mean 'image_f"):
        build_dataset(DatasetConfig(name="imagefolder"), "train")


@pytest.mark.parametrize(
    "targets, per_class",
    [(torch.tensor([0, 0, 0, 1, 1]), 3), ((torch.arange(6)[:, None] % torch.tensor([2, 3]) == 0).float(), 1)],
    ids=["more than a class has", "multi-label"],
)
def test_label_budget_advice_names_the_suite_keys(targets, per_class):
    """The advice to take a share instead named `train_fraction` bare ("use train_fraction"), which a suite does
    not read: it names the keys to set, as `tasks.<name>.<key>=` in a suite."""
    with pytest.raises((ConfigError, InputError)) as info:
        budget_indices(targets, 1.0, per_class, 0)
    msg = name_task_keys(str(info.value), "c", ClassificationConfig)
    assert msg.startswith(f"tasks.c.train_per_class={per_class} ")
    assert "tasks.c.train_per_class=0 and a share" in msg and msg.endswith("e.g. tasks.c.train_fraction=0.1")


def test_a_per_class_budget_above_a_class_stops_the_suite_before_the_first_task(
    tmp_path, monkeypatch, tiny_probe_backbone
):
    """An image folder's training labels are known without reading an image: a `train_per_class` above a class's
    training images is refused before any task runs (it was refused when its task ran, after the earlier ones)."""
    class_folder(tmp_path / "a", n=4, size=8)
    ran = []
    monkeypatch.setattr(runner, "_call_task", lambda fn, *a: ran.append(fn.__name__))
    data = {"name": "image_folder", "root": str(tmp_path / "a"), "val_fraction": 0.25, "test_fraction": 0.25}
    tasks = {"first": {**TASK, "data": data}, "k3": {**TASK, "data": data, "train_per_class": 3}}
    with pytest.raises(InputError) as info:
        runner.run_suite(runner.SuiteConfig(progress=False, tasks=tasks), "tiny", tmp_path / "out")
    assert ran == [] and str(info.value).startswith(
        "tasks.k3.train_per_class=3 is more than the 2 training images of class 'bright'; "
        "set tasks.k3.train_per_class <= 2 (the smallest class)"
    ), str(info.value)
    tasks["k3"]["train_per_class"] = 2  # fits: the precheck passes
    parsed = runner.parse_tasks(runner.SuiteConfig(progress=False, tasks=tasks), tmp_path / "out")
    precheck_inputs("k3", "classification", parsed["k3"].cfg, None)
