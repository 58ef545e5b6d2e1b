"""Image folders made of symbolic links to class folders (an ImageNet subset built with `ln -s`) are read as
torchvision's ImageFolder reads them (`os.walk(followlinks=True)`): Python 3.11's `Path.glob("**")` skipped linked
folders, so such a folder "held no image files" or lost its linked classes. A link back up the tree ends."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geodino.data.images import ImageFolderSource
from geodino.data.paths import IMAGE_EXTS, resolve_paths

pytestmark = pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symbolic links")


def _jpg(path: Path, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.fromarray(np.random.default_rng(seed).integers(0, 256, (20, 24, 3), dtype=np.uint8)).save(path)
    return path


def test_linked_class_folders_are_listed(tmp_path):
    _jpg(tmp_path / "store" / "cat" / "c1.jpg", 0)
    _jpg(tmp_path / "store" / "dog" / "d1.jpg", 1)
    subset = tmp_path / "subset"
    subset.mkdir()
    for name in ("cat", "dog"):
        os.symlink(tmp_path / "store" / name, subset / name, target_is_directory=True)
    want = [str(subset / "cat" / "c1.jpg"), str(subset / "dog" / "d1.jpg")]
    assert resolve_paths(subset, IMAGE_EXTS, what="image") == want
    src = ImageFolderSource(subset)
    assert len(src) == 2
    assert src.get(0, 0)["image"].shape == (3, 20, 24)


def test_a_link_back_up_the_tree_ends_and_lists_each_file_once(tmp_path):
    root = tmp_path / "root"
    _jpg(root / "a" / "x.jpg", 2)
    os.symlink(root, root / "a" / "loop", target_is_directory=True)
    assert resolve_paths(root, IMAGE_EXTS, what="image") == [str(root / "a" / "x.jpg")]


def test_plain_folders_keep_their_sorted_order_and_extension_filter(tmp_path):
    rels = ("b/2.PNG", "a/1.jpg", "a/z/3.jpeg")
    for k, rel in enumerate(rels):
        _jpg(tmp_path / rel, k)
    (tmp_path / "a" / "notes.md").write_text("x")
    assert resolve_paths(tmp_path, IMAGE_EXTS, what="image") == sorted(str(tmp_path / r) for r in rels)
    assert resolve_paths(tmp_path / "a", IMAGE_EXTS, recursive=False, what="image") == [str(tmp_path / "a" / "1.jpg")]
