"""`InputScaling.settle` reads each file's header once, however many files the listing has (the header cache is
an LRU of 65,536 entries: a second pass over a longer listing missed it for every file)."""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from geodino.data import headers
from geodino.eval.scaling import InputScaling


def test_one_header_read_per_file_past_the_cache_size(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    reads: list[str] = []
    real = headers._read

    def counting(name: str, reader: str) -> headers.ImageHeader:
        reads.append(name)
        return real(name, reader)

    monkeypatch.setattr(headers, "_read", counting)
    monkeypatch.setattr(headers, "_cached", functools.lru_cache(maxsize=2)(headers._cached.__wrapped__))
    files = []
    for i in range(6):  # three times the (shrunk) cache
        files.append(tmp_path / f"{i}.png")
        Image.fromarray(np.full((4, 4, 3), i, np.uint8)).save(files[-1])
    scaling = InputScaling()
    scaling.settle(files, lambda p: (np.zeros((3, 4, 4), np.uint8), None))
    assert sorted(reads) == sorted(str(f) for f in files)
    assert scaling.fixed[("uint8", 3)][0] == pytest.approx(1 / 255)
