"""splits.json of an image folder with split folders: the test files were written relative to ROOT/test under the
root ROOT/train, so `root / file` named no file; every split is now relative to the folder the splits share."""

from __future__ import annotations

import json
from pathlib import Path

from geodino.eval.data_splits import write_splits
from geodino.eval.datasets import DatasetConfig, build_dataset
from tests.eval.test_datasets import make_folder


def test_each_listed_file_of_split_folders_exists_under_the_recorded_root(tmp_path):
    make_folder(tmp_path / "d" / "train", {"a": 5, "b": 5})  # no val/: val is carved from train
    make_folder(tmp_path / "d" / "test", {"a": 2, "b": 2}, seed=1)
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path / "d"))
    splits = [build_dataset(cfg, s) for s in ("train", "val", "test")]
    write_splits(tmp_path / "splits.json", *splits)
    saved = json.loads((tmp_path / "splits.json").read_text())
    root = Path(saved["root"])
    assert root == (tmp_path / "d").resolve()
    assert saved["splits"]["test"] == ["test/a/0.png", "test/a/1.png", "test/b/0.png", "test/b/1.png"]
    listed = [f for names in saved["splits"].values() for f in names]
    assert len(listed) == 14 and len(set(listed)) == 14 and all((root / f).is_file() for f in listed)
    assert all(f.startswith("train/") for f in saved["splits"]["train"] + saved["splits"]["val"])


def test_a_folder_without_split_folders_keeps_paths_relative_to_its_root(tmp_path):
    make_folder(tmp_path, {"a": 5, "b": 5})
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path))
    splits = [build_dataset(cfg, s) for s in ("train", "val", "test")]
    write_splits(tmp_path / "splits.json", *splits)
    saved = json.loads((tmp_path / "splits.json").read_text())
    assert saved["root"] == str(tmp_path.resolve())
    assert sorted(f for names in saved["splits"].values() for f in names) == sorted(
        f"{c}/{i}.png" for c in "ab" for i in range(5)
    )
