"""A tar shard cut short (a partial download) with on_error: skip: the images whose bytes lie wholly in the file
are kept and the one cut in its data is dropped. Before, that cut member stayed indexed (it then read short and
failed at every epoch) while the warning said the shard was skipped and suggested on_error: skip, already set."""

from __future__ import annotations

import io
import tarfile

import numpy as np
import pytest
from PIL import Image

from geodino.data.images import TarShardSource
from geodino.errors import InputError


def _cut_shard(tmp_path):
    path = tmp_path / "cut.tar"
    with tarfile.open(path, "w") as tf:
        for i in range(3):
            buf = io.BytesIO()
            noise = np.random.default_rng(i).integers(0, 255, (32, 32, 3), dtype=np.uint8)
            Image.fromarray(noise).save(buf, format="PNG")
            info = tarfile.TarInfo(f"s{i}.png")
            info.size = len(buf.getvalue())
            tf.addfile(info, io.BytesIO(buf.getvalue()))
    with tarfile.open(path) as tf:
        third = tf.getmember("s2.png")
    data = path.read_bytes()
    path.write_bytes(data[: third.offset_data + third.size // 2])  # cut inside the third image's bytes
    return path


def test_cut_member_dropped_and_said(tmp_path):
    path = _cut_shard(tmp_path)
    with pytest.warns(
        UserWarning,
        match=r"tar shard .* cannot be read .*; kept the 2 images stored whole before that point, skipped the rest$",
    ) as rec:
        src = TarShardSource(path, shuffle=False)
    assert src.names == ["s0.png", "s1.png"]
    assert not any("on_error: skip" in str(w.message) for w in rec)
    for i in range(4):  # every sample reads whole: no short read left to fail
        assert src.get(i, seed=0)["image"].shape == (3, 32, 32)
    assert src.skipped == 0


def test_cut_shard_stops_with_on_error_stop(tmp_path):
    with pytest.raises(InputError, match=r"truncated or corrupt.*on_error: skip"):
        TarShardSource(_cut_shard(tmp_path), on_error="stop")
