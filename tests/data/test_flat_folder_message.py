"""An image source with `recursive: false` on a folder of class subfolders said only "holds no image files"; it now
adds that the subfolders were not searched because recursive is false (only when the folder has subfolders)."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from geodino.data.images import ImageFolderSource
from geodino.errors import InputError

NOTE = "(subfolders not searched: recursive is false)"


def test_class_subfolders_with_recursive_false_are_named(tmp_path) -> None:
    for cls in ("forest", "river"):
        (tmp_path / cls).mkdir()
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(tmp_path / cls / "a.png")
    with pytest.raises(InputError, match="holds no image files") as err:
        ImageFolderSource(tmp_path, recursive=False)
    assert NOTE in str(err.value), err.value
    assert len(ImageFolderSource(tmp_path, recursive=True).files) == 2  # the images are there


def test_no_note_without_subfolders_or_when_recursive(tmp_path) -> None:
    (tmp_path / "notes.txt").write_text("no images\n")
    with pytest.raises(InputError, match="holds no image files") as flat:
        ImageFolderSource(tmp_path, recursive=False)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputError, match="searched recursively") as deep:
        ImageFolderSource(tmp_path, recursive=True)
    assert NOTE not in str(flat.value) and NOTE not in str(deep.value)
