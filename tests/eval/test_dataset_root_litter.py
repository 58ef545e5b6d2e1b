"""What a Mac writes into a dataset root (`.DS_Store`, `._x` AppleDouble files, a zip's `__MACOSX/`) is none of its
data: a torchgeo dataset's feature-cache key (the stamp of its whole root) stays the same, while a label mask
changed in place still changes it; a class-folder root's `__MACOSX/` is no empty class to warn about."""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import numpy as np

from geodino.eval.datasets import DatasetConfig, build_dataset
from geodino.eval.folder_listing import desktop_litter
from tests.eval.class_folder import class_folder
from tests.eval.test_datasets import _png, make_loveda


def _mac_litter(root: Path, folders: list[Path]) -> None:
    """Finder's `.DS_Store` in each folder (replaced: a new inode, so the folder's mtime moves past a coarse clock's
    tick), an AppleDouble file beside an image, and a Mac zip's `__MACOSX/` of them."""
    for folder in folders:
        (folder / ".DS_Store.tmp").write_bytes(b"\0" * 64)
        os.replace(folder / ".DS_Store.tmp", folder / ".DS_Store")
        os.utime(folder, ns=(os.stat(folder).st_mtime_ns + 10**9,) * 2)
    for name in ("images_png/._0.png", "masks_png/._0.png"):
        (root / "Train" / "Urban" / name).write_bytes(b"\0\5\26\7" + b"\0" * 60)
    (root / "__MACOSX" / "Train" / "Urban").mkdir(parents=True)
    (root / "__MACOSX" / "Train" / "Urban" / "._images_png").write_bytes(b"\0\5\26\7" + b"\0" * 60)


def test_mac_litter_leaves_a_torchgeo_key_and_a_changed_mask_changes_it(tmp_path: Path) -> None:
    root = tmp_path / "loveda"
    make_loveda(root)
    cfg = DatasetConfig(name="loveda", root=str(root))
    before = build_dataset(cfg, "train").key
    _mac_litter(root, [root, root / "Train", root / "Train" / "Urban" / "masks_png"])
    # the old stamp (every file under the root, and the root's mtime) moved: every feature extracted again
    assert build_dataset(cfg, "train").key == before
    # a label mask rewritten in place (not in the adapter's file list, which names the images): a new dataset
    mask = root / "Train" / "Urban" / "masks_png" / "0.png"
    _png(mask, np.full((16, 16), 3, np.uint8))
    os.utime(mask, ns=(os.stat(mask).st_mtime_ns + 10**9,) * 2)  # past a coarse clock's tick
    changed = build_dataset(cfg, "train").key
    assert changed != before
    # a mask renamed (its size and mtime kept; the root's own mtime is no longer stamped): a new dataset too
    os.rename(mask, mask.with_name("9.png"))
    assert build_dataset(cfg, "train").key not in (before, changed)


def test_the_one_rule_of_what_is_no_data() -> None:
    for rel in (".DS_Store", "Train/._0.png", "a/.thumbnails/x.png", "__MACOSX/Train/0.png", "__MACOSX"):
        assert desktop_litter(rel.replace("/", os.sep)), rel
    for rel in ("Train/0.png", "eurosat-train.txt", "a/b.c/x.tif", "MACOSX/x.png"):
        assert not desktop_litter(rel.replace("/", os.sep)), rel


def test_a_mac_zips_folder_in_a_class_root_is_no_empty_class(tmp_path: Path) -> None:
    root = class_folder(tmp_path / "data", n=4, size=8)
    (root / "__MACOSX" / "dark").mkdir(parents=True)
    (root / "__MACOSX" / "dark" / "._0.png").write_bytes(b"\0\5\26\7" + b"\0" * 60)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # it warned: class folder __MACOSX holds no image file
        ds = build_dataset(DatasetConfig(name="image_folder", root=str(root), val_fraction=0.25), "train")
    assert ds.classes == ["bright", "dark"]


def test_a_root_file_replaced_by_an_older_copy_of_its_size_changes_the_stamp(tmp_path: Path) -> None:
    """Without the root's mtime in the stamp (a `.DS_Store` moves it), a mask replaced by an older copy of the same
    size (`mv` of a `cp -p` copy) left size, newest mtime, count and names alike: the old features were served."""
    from geodino.eval.folder_listing import folder_stamp

    root = tmp_path / "root"
    root.mkdir()
    for name, mtime in (("a.tif", 10**18), ("b.tif", 2 * 10**18)):
        (root / name).write_bytes(b"x" * 100)
        os.utime(root / name, ns=(mtime, mtime))
    before = folder_stamp(root)
    (tmp_path / "copy.tif").write_bytes(b"y" * 100)
    os.utime(tmp_path / "copy.tif", ns=(10**18 - 5,) * 2)
    os.replace(tmp_path / "copy.tif", root / "a.tif")
    assert folder_stamp(root) != before
