"""A corrupt image in an image folder (on_error: skip) is said once per process, not at every read: each epoch
read it again and warned again, flooding a long run's log with the same file. Known-bad items are replaced by the
same deterministic draw as before, so the samples do not change."""

from __future__ import annotations

import warnings

import numpy as np
from PIL import Image

from geodino.data.images import ImageFolderSource


def _folder(tmp_path):
    for i in range(3):
        Image.fromarray(np.full((8, 10, 3), 40 * i, dtype=np.uint8)).save(tmp_path / f"ok{i}.png")
    (tmp_path / "bad.jpg").write_bytes(b"\xff\xd8\xff\xe0 not a jpeg")
    return ImageFolderSource(tmp_path, shuffle=False)


def _read_all(src, epochs):
    out = []
    for index in range(epochs * len(src)):
        out.append((src.get(index, seed=3)["path"], index))
    return out


def test_corrupt_image_is_warned_once_and_samples_stay_the_same(tmp_path):
    src = _folder(tmp_path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        first = _read_all(src, epochs=3)
    said = [str(w.message) for w in caught if "corrupt image" in str(w.message)]
    assert len(said) == 1 and "bad.jpg" in said[0]
    assert src.skipped == 3  # every read of it was skipped (replaced), as `data stats` counts
    assert all("bad.jpg" not in path for path, _ in first)
    fresh = _folder(tmp_path)  # a new process state: the replacements are the same draws
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        assert _read_all(fresh, epochs=3) == first
