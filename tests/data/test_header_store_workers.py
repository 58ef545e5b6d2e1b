"""Headers read in a DataLoader worker (`data curate` reads each image's header there, `Tiles._too_large`) were
never written to the header store: a worker ends in `os._exit`, so the `atexit` flush never ran there, and a
second run read them all again. They are flushed when the worker exits."""

from __future__ import annotations

import numpy as np
import torch
from PIL import Image

from geodino.data import header_store, headers


class _Headers(torch.utils.data.Dataset):
    def __init__(self, files: list[str]) -> None:
        self.files = files

    def __len__(self) -> int:
        return len(self.files)

    def __getitem__(self, i: int) -> int:
        return headers.read_header(self.files[i]).count


def test_headers_read_in_dataloader_workers_are_kept(tmp_path, monkeypatch) -> None:
    files = []
    for i in range(6):
        Image.fromarray(np.full((8, 8, 3), i, np.uint8)).save(tmp_path / f"{i}.png")
        files.append(str(tmp_path / f"{i}.png"))
    header_store.close()
    headers._cached.cache_clear()
    loader = torch.utils.data.DataLoader(_Headers(files), batch_size=2, num_workers=2)
    assert [int(c) for b in loader for c in b] == [3] * 6
    header_store.close()  # a second process: what the workers read comes from the store
    headers._cached.cache_clear()
    reads: list[str] = []
    real = headers._read
    monkeypatch.setattr(headers, "_read", lambda name, reader: reads.append(name) or real(name, reader))
    assert [headers.read_header(f).count for f in files] == [3] * 6
    assert reads == []
