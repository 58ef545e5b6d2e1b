"""A file whose mtime lies in the future (`touch -d 2100-01-01`, an archive made on a machine whose clock ran
ahead) is cached like any settled file: freshness is judged by the ctime, which every write sets
(`io_stamps.changed_recently`), as the weights digest cache judges it. By the later of mtime and ctime such a file
looked changed "after now" forever and its header was read at every ask, as was its raster index."""

from __future__ import annotations

import os

import numpy as np
from PIL import Image


def test_a_future_mtime_does_not_keep_a_header_out_of_the_cache(tmp_path, monkeypatch, _settled_headers):
    from geodino.data import headers

    opened: list[str] = []
    real = headers._read
    monkeypatch.setattr(headers, "_read", lambda name, reader: opened.append(name) or real(name, reader))
    p = tmp_path / "a.png"
    Image.fromarray(np.zeros((10, 14), np.uint8)).save(p)
    future = os.stat(p).st_mtime_ns + 100 * 365 * 86400 * 10**9
    os.utime(p, ns=(future, future))
    for _ in range(3):
        assert headers.read_header(p).size == (14, 10)
    assert len(opened) == 1  # the old code: 3


def test_changed_recently_reads_ctimes_only() -> None:
    from geodino.io_stamps import RACY_NS, changed_recently

    now = 10 * RACY_NS
    assert changed_recently([now - RACY_NS + 1], now)
    assert changed_recently([now + 5], now)  # a server clock ahead: within the window until this clock catches up
    assert not changed_recently([now - RACY_NS - 1], now)
    assert changed_recently([now - 2 * RACY_NS, now], now)  # any of a file's and its sidecar's
