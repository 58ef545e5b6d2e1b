"""A corrupt image is said once per process even when two source objects read the same files: `geodino
pretrain` checks its sources for pixels with one object and trains with another, so with num_workers 0 every bad
file was warned twice (its message says "each file said once"). The second object still skips it."""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

from geodino.data import images
from geodino.data.images import ImageFolderSource


def test_second_source_object_does_not_say_a_bad_file_again(tmp_path, monkeypatch):
    monkeypatch.setattr(images, "_warned", set(), raising=False)
    for i in range(2):
        Image.fromarray(np.full((8, 8, 3), 50 * i, dtype=np.uint8)).save(tmp_path / f"ok{i}.png")
    (tmp_path / "bad.jpg").write_bytes(b"not an image at all")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for _ in range(2):
            src = ImageFolderSource(tmp_path, shuffle=False)
            paths = [src.get(i, seed=0)["path"] for i in range(3)]
            assert all("bad.jpg" not in p for p in paths)
            assert src.skipped >= 1  # every read of it is replaced (counted), said or not
    said = [str(w.message) for w in caught if "corrupt image" in str(w.message)]
    assert len(said) == 1 and "bad.jpg" in said[0]
