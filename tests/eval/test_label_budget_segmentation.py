"""Label budgets of a segmentation probe (train_fraction): a seeded subset of the training images, nested across
fractions, drawn after the val_fraction hold-out (val untouched), recorded in the results; bad values refused in
one line naming the key."""

from __future__ import annotations

import json

import pytest

from geodino.config import load_config, to_dict
from geodino.errors import ConfigError
from geodino.eval import dense, runner
from geodino.eval.runner import SuiteConfig, parse_tasks
from geodino.eval.scaling import InputScaling
from geodino.eval.segmentation import SegmentationProbeConfig, _samples, run_segmentation
from tests.eval.dense_backbone import tiny_backbone
from tests.eval.test_segmentation import make_folder


def _names(data) -> list[str]:
    return [data[i]["name"] for i in range(len(data))]


def _split(img, msk, fraction: float, seed: int = 0, **keys):
    cfg = SegmentationProbeConfig(
        train_images=str(img), train_masks=str(msk), num_classes=2, train_fraction=fraction, seed=seed, **keys
    )
    return _samples(cfg, None, None, InputScaling.of(cfg))


def test_budget_keeps_a_nested_seeded_share_of_the_training_images_and_leaves_val_whole(tmp_path):
    img, msk = make_folder(tmp_path, n=10, size=16)
    full_train, full_val = _split(img, msk, 1.0, val_fraction=0.2)
    assert (len(full_train), len(full_val)) == (8, 2)
    kept = {}
    for f in (0.1, 0.25, 0.5, 1.0):
        train, val = _split(img, msk, f, val_fraction=0.2)
        assert _names(val) == _names(full_val)  # the hold-out does not move with the budget
        kept[f] = _names(train)
    # max(1, fraction * 8 rounded half up): 1, 2, 4, 8
    assert [len(kept[f]) for f in (0.1, 0.25, 0.5, 1.0)] == [1, 2, 4, 8]
    assert set(kept[0.1]) <= set(kept[0.25]) <= set(kept[0.5]) <= set(kept[1.0]) == set(_names(full_train))
    assert not set(kept[1.0]) & set(_names(full_val))
    assert _names(_split(img, msk, 0.5, val_fraction=0.2)[0]) == kept[0.5]  # same seed, same images
    other = {tuple(_names(_split(img, msk, 0.5, seed=s, val_fraction=0.2)[0])) for s in range(1, 6)}
    assert len(other) > 1  # the seed draws the subset


def test_budget_with_val_folders_subsamples_only_the_training_folder(tmp_path):
    img, msk = make_folder(tmp_path / "train", n=6, size=16)
    vimg, vmsk = make_folder(tmp_path / "val", n=3, size=16, seed=1)
    train, val = _split(img, msk, 0.5, val_images=str(vimg), val_masks=str(vmsk))
    assert len(train) == 3 and len(val) == 3


def test_probe_under_a_budget_trains_on_fewer_images_and_records_them(tmp_path, capsys):
    img, msk = make_folder(tmp_path, n=6, size=32)
    keys = dict(
        train_images=str(img), train_masks=str(msk), num_classes=2, crop_size=32, epochs=1, min_steps=1, plots=0
    )
    keys.update(val_fraction=0.34, progress=False)  # 2 of 6 held out, 4 to train on
    full = run_segmentation(tiny_backbone(), SegmentationProbeConfig(**keys), tmp_path / "full")
    full_line = capsys.readouterr().err
    half = run_segmentation(tiny_backbone(), SegmentationProbeConfig(**keys, train_fraction=0.5), tmp_path / "half")
    half_line = capsys.readouterr().err
    assert "segmentation: 4096 training mask pixels" in full_line  # 4 images of 32 x 32
    assert "segmentation: 2048 training mask pixels" in half_line  # 2 of them
    assert "n_train" not in full and "train_fraction" not in full  # no budget, no info rows
    assert half["n_train"] == 2 and half["train_fraction"] == 0.5
    saved = json.loads((tmp_path / "half" / "segmentation_metrics.json").read_text())
    budget = saved["label_budget"]
    assert (budget["n_train_full"], budget["n_train"], budget["seed"]) == (4, 2, 0)
    assert len(budget["train_images"]) == 2 and set(budget["train_images"]) <= {f"s{i}.png" for i in range(6)}
    assert saved["n_train"] == 2 and 0.0 <= saved["mIoU"] <= 1.0


@pytest.mark.parametrize("fraction", [0.0, -0.5, 1.5])
def test_bad_fraction_is_one_line(tmp_path, fraction):
    img, msk = make_folder(tmp_path, n=2, size=16)
    cfg = SegmentationProbeConfig(train_images=str(img), train_masks=str(msk), num_classes=2, train_fraction=fraction)
    with pytest.raises(ConfigError) as info:
        run_segmentation(tiny_backbone(), cfg, tmp_path / "out")
    msg = str(info.value)
    assert msg.startswith(f"segmentation train_fraction={fraction} must be > 0 and <= 1") and "\n" not in msg


SUITE = """
name: seg_budget
tasks:
  seg:
    type: segmentation
    train_images: {img}
    train_masks: {msk}
    num_classes: 2
"""


def test_suite_names_the_task_key_and_hashes_a_task_without_a_budget_as_before(tmp_path):
    img, msk = make_folder(tmp_path, n=2, size=16)
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(img=img, msk=msk))
    cfg = load_config(SuiteConfig, path, ["tasks.seg.train_fraction=2"])
    with pytest.raises(ConfigError) as info:
        parse_tasks(cfg, tmp_path / "out")
    assert str(info.value).startswith("tasks.seg.train_fraction=2.0 must be > 0 and <= 1")
    parsed = parse_tasks(load_config(SuiteConfig, path), tmp_path / "out")  # no budget: parses
    task = to_dict(parsed["seg"].cfg)
    assert task["train_fraction"] == 1.0 and "train_per_class" not in task  # not a segmentation key
    assert "train_fraction" not in runner._hashed_task(task)  # the old config hash is kept


def test_train_per_class_is_not_a_segmentation_key(tmp_path):
    img, msk = make_folder(tmp_path, n=2, size=16)
    path = tmp_path / "suite.yaml"
    path.write_text(SUITE.format(img=img, msk=msk))
    with pytest.raises(ConfigError, match="train_per_class"):
        parse_tasks(load_config(SuiteConfig, path, ["tasks.seg.train_per_class=2"]), tmp_path / "out")


def test_subset_of_a_subset_reads_through():
    data = [{"name": str(i)} for i in range(10)]
    inner = dense.Subset(data, [1, 3, 5, 7, 9])
    assert _names(dense.Subset(inner, [0, 4])) == ["1", "9"]
