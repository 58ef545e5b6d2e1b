"""Image-folder inputs a user gets wrong: a class folder without images (left out silently, the probe had a class
fewer than the folders), and `data.bands` naming another band count than the files hold (the line named neither
the key nor what to do)."""

from __future__ import annotations

import warnings

import pytest

from geodino.errors import ConfigError
from geodino.eval.datasets import DatasetConfig, build_dataset
from tests.eval.test_datasets import make_folder


def test_an_empty_class_folder_is_named_once_with_the_classes_kept(tmp_path):
    make_folder(tmp_path, {"a": 3, "b": 3})
    (tmp_path / "river").mkdir()
    (tmp_path / "river" / "notes.txt").write_text("no image here")
    (tmp_path / ".hidden").mkdir()  # hidden folders are no classes and stay unnamed
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path), val_fraction=0.34, test_fraction=0.34)
    with pytest.warns(UserWarning) as caught:
        splits = [build_dataset(cfg, s) for s in ("train", "val", "test")]
    msgs = [str(w.message) for w in caught if "class folder" in str(w.message)]
    assert msgs == [
        f"class folder river in {tmp_path} holds no image file (.bmp, .gtif, .gtiff, .jpeg, .jpg, .png, .tif, .tiff, "
        ".webp): left out, the dataset has 2 classes (a, b); add images or remove the folder"
    ]
    assert all(ds.classes == ["a", "b"] for ds in splits)


def test_empty_class_folders_of_a_train_split_folder_are_named_and_full_folders_are_quiet(tmp_path):
    make_folder(tmp_path / "train", {"a": 2, "b": 2})
    make_folder(tmp_path / "test", {"a": 1, "b": 1})
    for name in ("c", "d"):
        (tmp_path / "train" / name).mkdir()
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path))
    with pytest.warns(UserWarning, match=r"^class folders c, d in .*train hold no image file .* 2 classes \(a, b\)"):
        build_dataset(cfg, "train")
    full = tmp_path / "full"
    make_folder(full, {"a": 3, "b": 3})
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert build_dataset(DatasetConfig(name="image_folder", root=str(full)), "train").classes == ["a", "b"]


def test_bands_naming_another_count_than_the_files_names_the_key_and_the_fix(tmp_path):
    make_folder(tmp_path, {"a": 3, "b": 3})
    cfg = DatasetConfig(name="image_folder", root=str(tmp_path), bands=["red"])
    with pytest.raises(ConfigError) as err:
        build_dataset(cfg, "train")
    assert str(err.value) == (
        f"data.bands=[red] name 1 band but images in {tmp_path} have 3: an image folder reads every band of its "
        "files, in file order, and this key only names them; list 3 names or set data.bands=[] (default names)"
    )
    assert build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path), bands=["r", "g", "b"]), "train")


def test_an_image_of_another_size_at_native_size_is_named_by_its_file(tmp_path):
    import numpy as np

    from geodino.errors import InputError
    from geodino.eval.features import FeatureConfig, extract_features
    from tests.eval.test_datasets import _png
    from tests.eval.tiny_backbone import TinyBackbone

    make_folder(tmp_path, {"a": 2, "b": 2})
    _png(tmp_path / "b" / "big.png", np.zeros((24, 24, 3), np.uint8))
    ds = build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path), val_fraction=0, test_fraction=0), "train")
    with pytest.raises(InputError, match=r"\(16, 16\) and \(24, 24\) \(b/big\.png in .*\); set features\.image_size"):
        extract_features(TinyBackbone(), ds, FeatureConfig(image_size=0, cache=False), progress=False)
