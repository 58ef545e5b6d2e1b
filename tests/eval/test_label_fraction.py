"""Label-efficiency probes (train_fraction / train_per_class): stratified per class, nested across budgets, seeded,
training split only, features extracted once for the full split, and recorded in the results files."""

from __future__ import annotations

import itertools
import json

import pytest
import torch

from geodino.config import load_config
from geodino.errors import ConfigError, InputError
from geodino.eval import runner
from geodino.eval.classification import ClassificationConfig, run_classification
from geodino.eval.datasets import DatasetConfig
from geodino.eval.features import FeatureConfig
from geodino.eval.label_budget import budget_indices, image_subset
from geodino.eval.linear import LinearConfig
from geodino.eval.runner import SuiteConfig, read_results, run_suite
from tests.eval.class_folder import class_folder
from tests.eval.tiny_backbone import TinyBackbone

# 50, 20, 3 and 1 training images of classes 0..3
LABELS = torch.tensor([0] * 50 + [1] * 20 + [2] * 3 + [3] * 1)


def _counts(rows: list[int], targets: torch.Tensor = LABELS) -> list[int]:
    return torch.bincount(targets[rows], minlength=4).tolist()


def test_fraction_is_stratified_per_class_with_one_image_per_class_at_least():
    # by hand: max(1, round(f * n_class)): 10 % of 50, 20, 3, 1 -> 5, 2, max(1, 0), max(1, 0)
    assert _counts(budget_indices(LABELS, 0.1, 0, seed=0)) == [5, 2, 1, 1]
    assert _counts(budget_indices(LABELS, 0.5, 0, seed=0)) == [25, 10, 2, 1]  # 1.5 -> 2, 0.5 -> 1
    assert _counts(budget_indices(LABELS, 0.1, 0, seed=0, classes=None)) == [5, 2, 1, 1]
    five = torch.tensor([0] * 5 + [1] * 25)
    assert torch.bincount(five[budget_indices(five, 0.5, 0, 0)]).tolist() == [3, 13]  # half up: 2.5 -> 3, 12.5 -> 13
    assert len(image_subset(5, 0.5, 0)) == 3
    assert _counts(budget_indices(LABELS, 0.01, 0, seed=0)) == [1, 1, 1, 1]
    assert budget_indices(LABELS, 1.0, 0, seed=0) == list(range(len(LABELS)))
    assert _counts(budget_indices(LABELS, 1.0, 1, seed=0)) == [1, 1, 1, 1]
    rows = budget_indices(LABELS[:73], 1.0, 3, seed=0)  # classes 0..2 only: 3 each
    assert _counts(rows) == [3, 3, 3, 0] and rows == sorted(set(rows))


def test_budgets_are_nested_and_seeded():
    for seed in (0, 1, 7):
        subsets = [set(budget_indices(LABELS, f, 0, seed)) for f in (0.01, 0.05, 0.1, 0.3, 0.5, 1.0)]
        assert all(a <= b for a, b in itertools.pairwise(subsets))
        per_class = [set(budget_indices(LABELS[:73], 1.0, k, seed)) for k in (1, 2, 3)]
        assert per_class[0] <= per_class[1] <= per_class[2]
        # a per-class budget and a fraction draw from the same per-class order: 1 per class is inside 10 %
        assert per_class[0] <= set(budget_indices(LABELS[:73], 0.1, 0, seed))
    assert budget_indices(LABELS, 0.3, 0, 5) == budget_indices(LABELS, 0.3, 0, 5)
    draws = {tuple(budget_indices(LABELS, 0.3, 0, s)) for s in range(5)}
    assert len(draws) == 5  # another seed, another subset


def test_multilabel_is_a_plain_nested_subset():
    targets = (torch.arange(40)[:, None] % torch.tensor([2, 3, 5]) == 0).float()  # [40, 3] multi-hot
    small, large = budget_indices(targets, 0.1, 0, 3), budget_indices(targets, 0.5, 0, 3)
    assert len(small) == 4 and len(large) == 20 and set(small) <= set(large)
    assert len(budget_indices(targets, 0.001, 0, 3)) == 1
    assert small == image_subset(40, 0.1, 3) and image_subset(0, 0.5, 3) == []
    with pytest.raises(ConfigError, match=r"^train_per_class=2 needs single-label classes"):
        budget_indices(targets, 1.0, 2, 0)


def test_multilabel_run_trains_on_a_subset_and_keeps_val_and_test(tmp_path, bigearthnet_cfg):
    full = run_classification(TinyBackbone(in_chans=12, spec="tiny"), bigearthnet_cfg, tmp_path / "full")
    bigearthnet_cfg.train_fraction = 0.5
    m = run_classification(TinyBackbone(in_chans=12, spec="tiny"), bigearthnet_cfg, tmp_path / "half")
    a, b = (json.loads((tmp_path / d / "classification.json").read_text()) for d in ("full", "half"))
    budget = b["label_budget"]
    assert budget["stratified"] is False and "per_class" not in budget and budget["n_train_full"] == a["n_train"]
    assert b["n_train"] == m["n_train"] == max(1, round(0.5 * a["n_train"])) < a["n_train"]
    assert (b["n_val"], b["n_eval"]) == (a["n_val"], a["n_eval"]) and "n_train" not in full
    bigearthnet_cfg.train_fraction, bigearthnet_cfg.train_per_class = 1.0, 1
    with pytest.raises(ConfigError, match=r"^train_per_class=1 needs single-label classes; this data is multi-label"):
        run_classification(TinyBackbone(in_chans=12, spec="tiny"), bigearthnet_cfg, tmp_path / "pc")


def test_a_budget_scored_on_val_keeps_the_optimistic_number_warning(tmp_path):
    """Under a budget the refit is skipped for the budget's reason; with eval_split=val the val-scored number must
    still be flagged as optimistic (the budget's warning alone had replaced it)."""
    class_folder(tmp_path / "imgs", classes=("a", "b"), n=8, size=8)
    cfg = ClassificationConfig(
        data=DatasetConfig(name="image_folder", root=str(tmp_path / "imgs"), val_fraction=0.25, test_fraction=0.25),
        features=FeatureConfig(cache=False),
        linear=LinearConfig(lrs=[0.1], weight_decays=[0.0], epochs=2, min_iterations=5, refit_on_trainval=True),
        eval_split="val",
        train_fraction=0.5,
        progress=False,
        plots=False,
    )
    cfg.knn.ks = [1]
    with pytest.warns(UserWarning) as caught:
        run_classification(TinyBackbone(spec="tiny"), cfg, tmp_path / "out")
    text = " ".join(str(w.message) for w in caught)
    assert "a label budget (train_fraction/train_per_class) is set, so linear is not refit" in text
    assert "eval_split=val, so linear is not refit" in text and "an optimistic number" in text


def test_per_class_too_large_stops_before_val_and_test_are_extracted(tmp_path):
    class_folder(tmp_path / "imgs", classes=("a", "b"), n=8, size=8)  # 4 training images per class
    cfg = ClassificationConfig(
        data=DatasetConfig(name="image_folder", root=str(tmp_path / "imgs"), val_fraction=0.25, test_fraction=0.25),
        features=FeatureConfig(cache=False),
        train_per_class=5,
        progress=False,
    )
    backbone = TinyBackbone(spec="tiny")
    with pytest.raises(InputError, match=r"^train_per_class=5 is more than the 4 training images of class 'a'"):
        run_classification(backbone, cfg, tmp_path / "out")
    assert backbone.calls == 1  # the training split's one batch; before: val's too


@pytest.mark.parametrize(
    ("fraction", "per_class", "start"),
    [
        (0.0, 0, "train_fraction=0.0 must be > 0 and <= 1"),
        (-0.1, 0, "train_fraction=-0.1 must be > 0 and <= 1"),
        (1.5, 0, "train_fraction=1.5 must be > 0 and <= 1"),
        (1.0, -1, "train_per_class=-1 must be >= 0"),
        (0.1, 2, "train_fraction=0.1 and train_per_class=2 are both set"),
    ],
)
def test_invalid_budgets_are_refused_with_one_line(fraction, per_class, start):
    with pytest.raises(ConfigError) as info:
        budget_indices(LABELS, fraction, per_class, 0)
    assert str(info.value).startswith(start) and "\n" not in str(info.value)


def test_per_class_larger_than_a_class_is_refused():
    with pytest.raises(InputError) as info:
        budget_indices(LABELS, 1.0, 4, 0, classes=["a", "b", "c", "d"])
    msg = str(info.value)
    assert msg.startswith("train_per_class=4 is more than the 3 training images of class 'c'") and "\n" not in msg
    assert "train_per_class <= 1 (the smallest class)" in msg


_TASK = """
  {name}:
    type: classification{budget}
    data: {{name: image_folder, root: {root}, val_fraction: 0.25, test_fraction: 0.25}}
    features: {{batch_size: 64, layers: four_last}}
    knn: {{ks: [1]}}
    linear: {{lrs: [0.1], weight_decays: [0.0], epochs: 2, min_iterations: 5, refit_on_trainval: true}}"""
# one task per budget, the same probe otherwise (SUITE is formatted with root= by _suite)
SUITE = (
    "name: budget\ntasks:"
    + "".join(
        _TASK.replace("{name}", name).replace("{budget}", budget)
        for name, budget in (
            ("full", ""),
            ("half", "\n    train_fraction: 0.5"),
            ("two_per_class", "\n    train_per_class: 2"),
        )
    )
    + "\n"
)


def _suite(tmp_path):
    class_folder(tmp_path / "imgs", classes=("a", "b", "c"), n=12, size=8)  # per class: 6 train, 3 val, 3 test
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(root=tmp_path / "imgs"))
    return path


def test_suite_runs_budgets_on_one_feature_extraction_and_records_them(tmp_path, monkeypatch):
    backbones: list[TinyBackbone] = []

    def load(*args):
        backbones.append(TinyBackbone(spec="tiny"))
        return backbones[-1]

    monkeypatch.setattr(runner, "load_probe_backbone", load)
    cfg = load_config(SuiteConfig, _suite(tmp_path), ["progress=false", "seed=3"])
    with pytest.warns(UserWarning, match="label budget .* not refit on train \\+ val"):
        rows = run_suite(cfg, "tiny", tmp_path / "out")
    out = tmp_path / "out"
    # one extraction of each split (train, val, test) for all three tasks: the budgets subsample cached features
    assert len(list((out / "feature_cache").glob("*.safetensors"))) == 3
    assert backbones[0].calls == 3  # one batch per split, none for the second and third task
    reports = {t: json.loads((out / t / "classification.json").read_text()) for t in ("full", "half", "two_per_class")}
    assert [reports[t]["n_train"] for t in reports] == [18, 9, 6]
    assert all(reports[t]["n_val"] == 9 and reports[t]["n_eval"] == 9 for t in reports)  # val/test untouched
    assert reports["half"]["label_budget"]["per_class"] == {"a": 3, "b": 3, "c": 3}
    assert reports["two_per_class"]["label_budget"]["per_class"] == {"a": 2, "b": 2, "c": 2}
    assert reports["half"]["linear"]["refit_on_trainval"] is False and reports["full"]["linear"]["refit_on_trainval"]
    splits = {t: json.loads((out / t / "splits.json").read_text())["splits"] for t in reports}
    assert set(splits["two_per_class"]["train"]) <= set(splits["half"]["train"]) <= set(splits["full"]["train"])
    assert len(splits["half"]["train"]) == 9 and splits["half"]["val"] == splits["full"]["val"]
    assert splits["half"]["test"] == splits["full"]["test"]
    info = {(r["task"], r["metric"]): r for r in rows if r["kind"] == "info"}
    assert info[("half", "n_train")]["value"] == 9 and info[("half", "train_fraction")]["value"] == 0.5
    assert info[("two_per_class", "n_train")]["value"] == 6
    assert info[("two_per_class", "train_fraction")]["value"] == pytest.approx(6 / 18)
    assert ("full", "n_train") not in info
    md = (out / "results.md").read_text()
    assert "| half | image_folder:imgs | n_train | 9 |" in md
    assert "| half | image_folder:imgs | train_fraction | 0.5000 |" in md
    assert read_results(out)["configs"]["half"]["train_fraction"] == 0.5
    hashes = {r["task"]: r["config_hash"] for r in rows}
    assert len(set(hashes.values())) == 3  # each budget is its own configuration
    # a task without a budget keeps the hash it had before the keys existed (the config without them, as hashed then)
    full = read_results(out)["configs"]["full"]
    task = {k: v for k, v in full.items() if k not in ("type", "backbone_bands", "backbone_sensor")}
    task = {k: v for k, v in task.items() if k not in ("train_fraction", "train_per_class")}
    before = runner.config_hash({"task": task, "data": None, "backbone_bands": [], "backbone_sensor": ""})
    assert hashes["full"] == before


def test_suite_refuses_a_bad_fraction_naming_the_task_key(tmp_path, tiny_probe_backbone):
    cfg = load_config(SuiteConfig, _suite(tmp_path), ["progress=false", "tasks.half.train_fraction=0"])
    with pytest.raises(ConfigError) as info:
        run_suite(cfg, "tiny", tmp_path / "out")
    assert str(info.value).startswith("tasks.half.train_fraction=0") and "\n" not in str(info.value)
    assert not (tmp_path / "out" / "results.json").exists()
