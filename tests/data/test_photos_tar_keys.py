"""Tar shards group members by webdataset key (the name up to the first dot), so a tar of a photo folder whose
names hold dots (photo.2021.01.jpg ...) gave one sample for all of them, silently, where the same folder read as
`type: images` gives one per file. The grouping stays (webdataset's rule: key.jpg + key.seg.png is one sample);
the left-out members are now said in one line with an example and a count."""

from __future__ import annotations

import tarfile
import warnings

import numpy as np
import pytest
from PIL import Image

from geodino.data.images import ImageFolderSource, TarShardSource


def _photos(folder, names):
    folder.mkdir()
    for i, name in enumerate(names):
        Image.fromarray(np.full((8, 8, 3), 30 * i, dtype=np.uint8)).save(folder / name)
    return folder


def _tar(folder, path):
    with tarfile.open(path, "w") as tf:
        for f in sorted(folder.iterdir()):
            tf.add(f, arcname=f.name)
    return path


def test_dotted_names_left_out_are_said(tmp_path):
    names = [f"photo.2021.0{i}.jpg" for i in range(1, 5)]
    folder = _photos(tmp_path / "dots", names)
    shard = _tar(folder, tmp_path / "dots.tar")
    assert len(ImageFolderSource(folder)) == 4
    with pytest.warns(UserWarning, match=r"3 image members of the tar shards left out \(1 samples kept\)") as rec:
        src = TarShardSource(shard)
    assert len(src) == 1  # webdataset's grouping is kept
    msg = next(str(w.message) for w in rec if "left out" in str(w.message))
    assert "photo.2021.02.jpg after photo.2021.01.jpg" in msg and "first dot" in msg


def test_distinct_keys_say_nothing(tmp_path):
    folder = _photos(tmp_path / "plain", ["a.jpg", "b.png", "c_2021.jpg"])
    shard = _tar(folder, tmp_path / "plain.tar")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        src = TarShardSource(shard)
    assert len(src) == 3 and [n for n in src.names] == ["a.jpg", "b.png", "c_2021.jpg"]
