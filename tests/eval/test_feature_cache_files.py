"""The feature cache and image files replaced under their names with the same size and mtime (`cp -p`, `rsync -t`,
an archive extracted again): the folder stamp in the key stays the same, so the probe scored the old image's
features. Each entry now records its files (`eval/feature_files.py`) and a hit checks them."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

import geodino.embed.file_stamps
from geodino.eval.datasets import DatasetConfig, build_dataset
from geodino.eval.features import FeatureConfig, extract_features
from geodino.io_stamps import RACY_NS
from tests.eval.tiny_backbone import TinyBackbone


def _folder(root: Path, n: int = 5) -> DatasetConfig:
    """Two classes of `n` noise PNGs, stored uncompressed: every file has the same size, so one can replace another
    with its size unchanged."""
    rng = np.random.default_rng(0)
    for c in ("a", "b"):
        (root / c).mkdir(parents=True)
        for i in range(n):
            Image.fromarray(rng.integers(0, 255, (16, 16, 3), np.uint8)).save(root / c / f"{i}.png", compress_level=0)
    return DatasetConfig(name="image_folder", root=str(root))  # 3 + 1 + 1 images of each class


def _copy_keeping_time(src: Path, dst: Path) -> None:
    """`cp -p src dst` onto an existing file: its bytes, the old file's size (here) and mtime."""
    st = os.stat(dst)
    shutil.copyfile(src, dst)
    os.utime(dst, ns=(st.st_atime_ns, st.st_mtime_ns))
    assert os.stat(dst).st_size == st.st_size


def _extract(bb, cfg, cache_dir, use_cache=True):
    fc = FeatureConfig(layers="last", batch_size=2, cache=use_cache)
    return extract_features(bb, build_dataset(cfg, "train"), fc, cache_dir=cache_dir, progress=False)


@pytest.mark.parametrize("racy", [True, False], ids=["files just made: heads hashed", "older files: by ctime"])
def test_an_image_replaced_with_the_same_size_and_mtime_gets_its_new_features(tmp_path, monkeypatch, capsys, racy):
    """Replaced by another image's bytes, size and mtime kept: the old code served the entry (key unchanged); now the
    batch holding it is computed again, and the result equals a run without the cache, bit for bit."""
    if not racy:  # as for a folder not written in the last 2 s: a file is trusted by its stat alone
        monkeypatch.setattr(geodino.embed.file_stamps, "RACY_NS", 0)
    cfg, bb, cache = _folder(tmp_path / "d"), TinyBackbone(), tmp_path / "cache"
    first = _extract(bb, cfg, cache)
    ds = build_dataset(cfg, "train")
    names = ds.sample_files()
    assert len(names) == 6 and bb.calls == 3  # 3 batches of 2
    replaced, donor = tmp_path / "d" / names[3], tmp_path / "d" / names[0]
    _copy_keeping_time(donor, replaced)
    assert build_dataset(cfg, "train").key == ds.key  # what the cache key sees has not changed
    calls = bb.calls
    second = _extract(bb, cfg, cache)
    assert not second.from_cache and bb.calls == calls + 1  # the batch of row 3 only
    said = capsys.readouterr().err
    assert f"1 image of image_folder (train) changed since its features were cached ({names[3]})" in said
    assert "computing the features of 1 batch (2 images) again" in said
    fresh = _extract(bb, cfg, cache, use_cache=False)
    assert torch.equal(second.cls, fresh.cls) and torch.equal(second.patch_mean, fresh.patch_mean)
    assert torch.equal(second.targets, fresh.targets)
    assert torch.equal(second.cls[3], fresh.cls[0]) and not torch.equal(second.cls[3], first.cls[3])  # donor's
    calls = bb.calls
    third = _extract(bb, cfg, cache)  # the entry and its record were rewritten: a plain hit again
    assert third.from_cache and bb.calls == calls and torch.equal(third.cls, fresh.cls)


def test_an_unchanged_folder_is_read_from_the_cache_with_no_forward_and_no_file_read(tmp_path, monkeypatch):
    """A hit stats the files (no read) when their change time is that recorded; a file whose change time moved with
    the same bytes (the same archive extracted again) has its head hashed once, and is no reason to recompute."""
    monkeypatch.setattr(geodino.embed.file_stamps, "RACY_NS", 0)
    hashed: list[Path] = []
    state = geodino.embed.file_stamps.file_state
    monkeypatch.setattr(geodino.embed.file_stamps, "file_state", lambda p: hashed.append(p) or state(p))
    cfg, bb, cache = _folder(tmp_path / "d"), TinyBackbone(), tmp_path / "cache"
    first = _extract(bb, cfg, cache)
    assert len(hashed) == 6 and len(list(cache.glob("*.files.json"))) == 1  # recorded before the pixels were read
    calls, hashed[:] = bb.calls, []
    second = _extract(bb, cfg, cache)
    assert second.from_cache and bb.calls == calls and hashed == [] and torch.equal(second.cls, first.cls)
    same = tmp_path / "d" / build_dataset(cfg, "train").sample_files()[1]
    shutil.copy(same, tmp_path / "copy.png")
    _copy_keeping_time(tmp_path / "copy.png", same)  # the same bytes written again: a new change time
    third = _extract(bb, cfg, cache)
    assert third.from_cache and bb.calls == calls and hashed == [same]
    hashed[:] = []
    assert _extract(bb, cfg, cache).from_cache and hashed == []  # its new change time was recorded


def test_an_entry_cached_before_files_were_recorded_is_kept_unless_a_file_changed_after_it(tmp_path):
    """An entry written before records were kept has none: it is trusted when every file's change time is older
    than the entry (and its record written then), and the rows of files changed after it are computed again."""
    cfg, bb, cache = _folder(tmp_path / "d"), TinyBackbone(), tmp_path / "cache"
    first = _extract(bb, cfg, cache)
    entry = next(cache.glob("*.safetensors"))
    record = entry.with_name(entry.stem + ".files.json")
    record.unlink()
    later = os.stat(entry).st_mtime_ns + RACY_NS + 10**10  # written well after the files last changed
    os.utime(entry, ns=(later, later))
    calls = bb.calls
    kept = _extract(bb, cfg, cache)
    assert kept.from_cache and bb.calls == calls and torch.equal(kept.cls, first.cls) and record.is_file()
    record.unlink()
    names = build_dataset(cfg, "train").sample_files()
    _copy_keeping_time(tmp_path / "d" / names[0], tmp_path / "d" / names[5])
    earlier = os.stat(entry).st_mtime_ns - 10**11  # the files changed after the entry
    os.utime(entry, ns=(earlier, earlier))
    redone = _extract(bb, cfg, cache)
    assert not redone.from_cache and bb.calls == calls + 3 and record.is_file()
    assert torch.equal(redone.cls[5], first.cls[0])


@pytest.mark.parametrize(
    "damage",
    [lambda r: r[:1], lambda r: [r[0], 852, *r[2:]]],
    ids=["cut short", "state a number"],
)
def test_a_damaged_record_is_adopted_not_a_crash(tmp_path, damage):
    """A record whose rows are not `[name, state, ctime, inode]` (edited by hand, cut by another tool) was unpacked as
    it came: a ValueError or AttributeError out of the probe. Now it is a record lost: the entry is adopted (by change
    time) and a whole record written again."""
    import json

    cfg, bb, cache = _folder(tmp_path / "d"), TinyBackbone(), tmp_path / "cache"
    first = _extract(bb, cfg, cache)
    entry = next(cache.glob("*.safetensors"))
    record = entry.with_name(entry.stem + ".files.json")
    data = json.loads(record.read_text())
    good = data["files"][0]
    data["files"][0] = damage(good)
    record.write_text(json.dumps(data))
    later = os.stat(entry).st_mtime_ns + RACY_NS + 10**10  # the files older than the entry: adopted whole
    os.utime(entry, ns=(later, later))
    calls = bb.calls
    again = _extract(bb, cfg, cache)
    assert again.from_cache and bb.calls == calls and torch.equal(again.cls, first.cls)
    assert json.loads(record.read_text())["files"][0][:2] == good[:2]  # the record written again, whole
