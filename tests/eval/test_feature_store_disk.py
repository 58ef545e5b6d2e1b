"""The dense probes' `cache_features: disk` store writes each chunk whole or not at all.

A full disk or a kill in the middle of `np.save` left a partial `.npy` under its final name in OUT/feature_cache/
(and the folder made for it), and the refusal named no file; each array is now written under a temporary name and
renamed when complete, a refused write removes what the store wrote and the folders it made, and a file that does
not read back as written is written again or refused in one line. A stub backbone keeps these tests fast."""

from __future__ import annotations

import errno
import io
import os

import numpy as np
import numpy.lib.format as npy_format
import pytest
import torch

from geodino.errors import InputError
from geodino.eval import head_training
from geodino.eval.head_training import FeatureStore
from geodino.io_temps import temp_name
from geodino.storage_errors import storage_error

TILES = torch.rand(6, 3, 8, 8, generator=torch.Generator().manual_seed(0))


class StubBackbone:
    """Features without a network: a map [B,4,h,w] and a CLS [B,4] computed from the pixels."""

    patch_size, embed_dim, n_blocks = 4, 4, 1

    def normalize(self, x: torch.Tensor) -> torch.Tensor:
        return x

    def features(self, x: torch.Tensor, layers: object = "last", norm: bool = True):
        maps = torch.nn.functional.avg_pool2d(torch.cat([x, x[:, :1] * 2], 1), self.patch_size)
        return [maps], [maps.mean((2, 3))]


def _store(folder, mode: str = "disk") -> FeatureStore:
    return FeatureStore.from_tiles(StubBackbone(), TILES, "last", mode, folder, batch_size=2, progress=False)


def _cut_write(monkeypatch: pytest.MonkeyPatch, after: int, exc: BaseException) -> None:
    """`np.save`'s array write: the first `after` arrays whole, then half the next one's bytes and `exc`."""
    real, calls = npy_format.write_array, []

    def write_array(fp, array, *args, **kwargs):
        calls.append(1)
        if len(calls) <= after:
            return real(fp, array, *args, **kwargs)
        buf = io.BytesIO()
        real(buf, array, *args, **kwargs)
        fp.write(buf.getvalue()[: len(buf.getvalue()) // 2])
        fp.flush()
        raise exc

    monkeypatch.setattr(npy_format, "write_array", write_array)


@pytest.mark.parametrize("folder_existed", [False, True])
def test_a_full_disk_leaves_no_partial_file_nor_the_folders_made_and_names_the_file(
    tmp_path, monkeypatch, folder_existed
):
    out = tmp_path / "out"
    other = out / "feature_cache" / "kept.txt"
    if folder_existed:
        other.parent.mkdir(parents=True)
        other.write_text("not the store's")
    _cut_write(monkeypatch, 2, OSError(errno.ENOSPC, os.strerror(errno.ENOSPC)))  # chunk 0 whole, chunk 1 cut
    with pytest.raises(OSError) as info:
        _store(out / "feature_cache")
    failed = out / "feature_cache" / "map0_000001.npy"
    assert info.value.errno == errno.ENOSPC and info.value.filename == str(failed)
    line = storage_error(info.value)
    assert line is not None and line.startswith(f"the storage refused a write writing {failed} (No space left")
    left = sorted(p.relative_to(tmp_path) for p in tmp_path.rglob("*"))
    if folder_existed:  # the store's files (chunk 0's too: never read by another run) go; the folder stays
        assert left == [p.relative_to(tmp_path) for p in (out, other.parent, other)]
    else:  # before: feature_cache/ with chunk 0 and a partial map0_000001.npy
        assert left == []


def test_a_killed_write_leaves_only_whole_files_and_the_next_run_reads_its_own(tmp_path, monkeypatch):
    folder = tmp_path / "feature_cache"
    _cut_write(monkeypatch, 1, KeyboardInterrupt())  # killed in chunk 0's CLS
    with pytest.raises(KeyboardInterrupt):
        _store(folder)
    monkeypatch.undo()
    left = sorted(p.name for p in folder.iterdir())
    assert left == ["map0_000000.npy"]  # before: also a partial cls0_000000.npy
    assert np.load(folder / left[0]).shape == (2, 4, 2, 2)
    (folder / "map0_000001.npy").write_bytes(b"\x93NUMPY")  # a truncated chunk of an older run
    killed = temp_name(folder / "cls0_000001.npy")  # and the temporary of a run killed (by SIGKILL) while writing
    killed = killed.with_name(killed.name.replace(f"-{os.getpid()}.", "-999999999."))
    killed.write_bytes(b"\x93NUMPY")
    disk, memory = _store(folder), _store(None, "memory")
    got, want = disk.get(range(6)), memory.get(range(6))
    assert all(torch.equal(a, b) for a, b in zip(got[0] + got[1], want[0] + want[1], strict=True))
    assert not [p for p in folder.iterdir() if p.name.startswith(".")]  # no temporary left


def test_a_file_that_does_not_read_back_is_written_again_then_refused_in_one_line(tmp_path, monkeypatch):
    real, cut = np.load, []

    def truncating_load(f, *args, **kwargs):  # another writer cut the file between its rename and its read
        if len(cut) < cut_times:
            cut.append(f)
            with open(f, "r+b") as fh:
                fh.truncate(100)
        return real(f, *args, **kwargs)

    monkeypatch.setattr(head_training.np, "load", truncating_load)
    cut_times = 1
    store = _store(tmp_path / "a")
    assert cut == [tmp_path / "a" / "map0_000000.npy"]  # written again, then read whole
    assert torch.equal(store.get([0])[0][0], _store(None, "memory").get([0])[0][0])
    cut.clear()
    cut_times = 2
    with pytest.raises(InputError, match=r"^feature cache file .*/b/map0_000000\.npy does not read back as written"):
        _store(tmp_path / "b")
