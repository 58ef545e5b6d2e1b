"""An image-folder dataset's feature-cache key reads its images, not the hidden files a desktop writes beside them."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
from PIL import Image

from geodino.eval.datasets import DatasetConfig, build_dataset
from tests.eval.class_folder import class_folder


def _key(root: Path) -> str:
    return build_dataset(DatasetConfig(name="image_folder", root=str(root), val_fraction=0.25), "train").key


def test_hidden_files_leave_the_key_and_images_change_it(tmp_path: Path) -> None:
    root = class_folder(tmp_path / "data", n=4, size=8)
    before = _key(root)
    # Finder's .DS_Store (replaced: a new inode, the folder's mtime moves), a copy's AppleDouble file, Thumbs.db
    for folder in (root, root / "dark"):
        (folder / ".DS_Store.tmp").write_bytes(b"\0" * 64)
        os.replace(folder / ".DS_Store.tmp", folder / ".DS_Store")
        os.utime(folder, ns=(os.stat(folder).st_mtime_ns + 10**9,) * 2)  # past a coarse clock's tick
    (root / "dark" / "._0.png").write_bytes(b"\0\5\26\7" + b"\0" * 60)
    (root / "bright" / ".hidden" / "x.png").parent.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(root / "bright" / ".hidden" / "x.png")
    assert _key(root) == before  # the old stamp (the folder's files and mtime) changed: features extracted again
    # a real change still counts: an image rewritten in place with other pixels and size
    Image.fromarray(np.full((9, 9, 3), 7, np.uint8)).save(root / "bright" / "1.png")
    changed = _key(root)
    assert changed != before
    Image.fromarray(np.full((8, 8, 3), 9, np.uint8)).save(root / "bright" / "4.png")  # an image added
    assert _key(root) not in (before, changed)
