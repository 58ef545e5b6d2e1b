"""A probe's image files that do not read are named all at once, before any feature is extracted.

Before: the dataset-wide scaling pass (`InputScaling.settle`) stopped at the first file that did not read, so a
class-per-folder set with three broken JPEGs (an empty file, a cut download) took three runs to clean up, one file a
run. Now one line says how many files do not read, the first's reason and the others' paths; a single broken file
keeps its own line.
"""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from geodino.errors import InputError
from geodino.eval.datasets import DatasetConfig, image_folder


def _folder(root, broken):
    for cls in ("forest", "river"):
        (root / cls).mkdir(parents=True)
        for i in range(5):
            Image.fromarray(np.full((16, 16, 3), 40 * i, np.uint8)).save(root / cls / f"{cls}_{i}.jpg")
    for name in broken:
        (root / name).write_bytes(b"" if "empty" in name else b"\xff\xd8\xff\xe0" + b"\x00" * 64)
    return DatasetConfig(name="image_folder", root=str(root))


def test_every_unreadable_file_is_named_in_one_line(tmp_path):
    cfg = _folder(tmp_path / "set", ["forest/empty.jpg", "river/cut_a.jpg", "river/cut_b.jpg"])
    with pytest.raises(InputError) as err:
        image_folder(cfg, "train")
    line = str(err.value)
    assert line.startswith("3 of 13 image files do not read: cannot read image ")
    assert "forest/empty.jpg: an empty file" in line
    assert "river/cut_a.jpg" in line and "river/cut_b.jpg" in line and "\n" not in line


def test_one_unreadable_file_keeps_its_own_line(tmp_path):
    cfg = _folder(tmp_path / "set", ["river/cut_a.jpg"])
    with pytest.raises(InputError, match=r"^cannot read image .*cut_a\.jpg: .*; check the file or remove it$"):
        image_folder(cfg, "train")
