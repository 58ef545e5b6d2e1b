"""webdataset's shard notation `shard-{000000..000001}.tar` (and `{a,b}` lists) names tar shards: it was refused
as "does not exist", so a webdataset user's path needed rewriting into a glob or a list."""

from __future__ import annotations

import io
import tarfile

import numpy as np
from PIL import Image

from geodino.data.images import TarShardSource, expand_braces


def _shard(path, n, start):
    with tarfile.open(path, "w") as tf:
        for i in range(start, start + n):
            buf = io.BytesIO()
            Image.fromarray(np.full((8, 8, 3), i, dtype=np.uint8)).save(buf, format="PNG")
            info = tarfile.TarInfo(f"{i:06d}.png")
            info.size = len(buf.getvalue())
            tf.addfile(info, io.BytesIO(buf.getvalue()))


def test_brace_range_names_the_shards(tmp_path):
    for s in range(3):
        _shard(tmp_path / f"shard-{s:06d}.tar", 2, 10 * s)
    src = TarShardSource(str(tmp_path / "shard-{000000..000001}.tar"), shuffle=False)
    assert [p.rsplit("/", 1)[-1] for p in src.shards] == ["shard-000000.tar", "shard-000001.tar"]
    assert len(src) == 4
    both = TarShardSource([str(tmp_path / "shard-{000000,000002}.tar")], shuffle=False)
    assert len(both.shards) == 2 and both.names[-1] == "000021.png"


def test_expand_braces_rules(tmp_path):
    assert expand_braces("a{1..3}.tar") == ["a1.tar", "a2.tar", "a3.tar"]
    assert expand_braces("a{08..10}.tar") == ["a08.tar", "a09.tar", "a10.tar"]
    assert expand_braces("a{0..10}.tar")[:2] == ["a0.tar", "a1.tar"]  # no leading zero: no padding (bash)
    assert expand_braces("{x,y}-{1..2}.tar") == ["x-1.tar", "x-2.tar", "y-1.tar", "y-2.tar"]
    real = tmp_path / "odd{1..2}.tar"  # a file really named so is kept as written
    real.write_bytes(b"")
    assert expand_braces(str(real)) == [str(real)]
    assert expand_braces("plain/{name}.tar") == ["plain/{name}.tar"]
