"""A feature-cache entry and its record of files (`<key>.safetensors`, `<key>.files.json`) are two files, each
replaced atomically but not together: with job-array runs sharing one cache, a run read the entry, another run
replaced the entry and then the record, and the first paired the entry it had read with the new record, which
vouched for files the old entry's rows do not hold (an image replaced since: its old features served as current).
Each entry names the record it belongs to (`feature_files.entry_tag`); a record of another write is not used."""

from __future__ import annotations

import torch

from geodino.eval import feature_files
from geodino.eval.datasets import build_dataset
from tests.eval.test_feature_cache_files import _copy_keeping_time, _extract, _folder
from tests.eval.tiny_backbone import TinyBackbone


def test_an_entry_is_not_paired_with_the_record_another_run_wrote_after_it_was_read(tmp_path, monkeypatch):
    cfg, cache = _folder(tmp_path / "d"), tmp_path / "cache"
    first = _extract(TinyBackbone(), cfg, cache)
    names = build_dataset(cfg, "train").sample_files()
    _copy_keeping_time(tmp_path / "d" / names[0], tmp_path / "d" / names[3])  # row 3 changed, size and mtime kept
    real, other = feature_files._read_record, []

    def another_run_in_between(entry, files):  # this run has read the entry; the other one rewrites entry and record
        if not other:
            other.append(None)
            other[0] = _extract(TinyBackbone(), cfg, cache)
        return real(entry, files)

    monkeypatch.setattr(feature_files, "_read_record", another_run_in_between)
    mine = _extract(TinyBackbone(), cfg, cache)
    fresh = _extract(TinyBackbone(), cfg, cache, use_cache=False)
    assert not torch.equal(fresh.cls[3], first.cls[3]) and torch.equal(other[0].cls, fresh.cls)
    assert torch.equal(mine.cls, fresh.cls) and not mine.from_cache  # was row 3 of the entry read first: the old image
    assert _extract(TinyBackbone(), cfg, cache).from_cache  # the entry and record on disk are a pair: a plain hit


def test_an_entry_without_its_record_is_aged_by_the_file_read_not_one_written_after(tmp_path, monkeypatch):
    """An entry with no record beside it (written before records were kept, or its record's write refused) trusts
    the rows of files not changed since the entry was written. That time was taken from a stat of the entry made
    after it was read: another run that replaced the entry in between (and had not written its record yet) made the
    old entry's rows look newer than a changed image, whose old features were then served. The age is now that of
    the file read."""
    import geodino.embed.file_stamps

    monkeypatch.setattr(geodino.embed.file_stamps, "RACY_NS", 0)  # as for files changed more than RACY_NS apart
    cfg, cache = _folder(tmp_path / "d"), tmp_path / "cache"
    first = _extract(TinyBackbone(), cfg, cache)
    entry = next(cache.glob("*.safetensors"))
    feature_files.record_path(entry).unlink()  # an entry without its record: adopted by change time
    names = build_dataset(cfg, "train").sample_files()
    _copy_keeping_time(tmp_path / "d" / names[0], tmp_path / "d" / names[3])  # row 3 changed after the entry
    real, keep, other = feature_files._read_record, feature_files.keep_record, []

    def another_run_in_between(entry, files):  # this run has read the entry; another rewrites it, not yet its record
        if not other:
            other.append(None)
            monkeypatch.setattr(feature_files, "keep_record", lambda *a, **k: None)
            other[0] = _extract(TinyBackbone(), cfg, cache)
            monkeypatch.setattr(feature_files, "keep_record", keep)
        return real(entry, files)

    monkeypatch.setattr(feature_files, "_read_record", another_run_in_between)
    mine = _extract(TinyBackbone(), cfg, cache)
    fresh = _extract(TinyBackbone(), cfg, cache, use_cache=False)
    assert not torch.equal(fresh.cls[3], first.cls[3]) and torch.equal(other[0].cls, fresh.cls)
    assert torch.equal(mine.cls, fresh.cls)  # was row 3 of the entry read first: the old image's features


def test_an_entry_replaced_while_it_is_read_is_no_hit(tmp_path, monkeypatch):
    """The stat that ages an entry is taken before its read; one replaced between that stat and the read's end (a
    new inode) may have served either write's bytes, so it is read as a miss and the split extracted anew."""
    import os
    import shutil

    from geodino.eval import features

    cfg, cache = _folder(tmp_path / "d"), tmp_path / "cache"
    first = _extract(TinyBackbone(), cfg, cache)
    entry = next(cache.glob("*.safetensors"))
    real, calls = features._entry_stat, []

    def replaced_during_the_read(path):
        calls.append(path)
        if len(calls) % 2 == 0:  # after each read: another run put a copy of an entry in its place
            shutil.copyfile(path, tmp_path / "copy")
            os.replace(tmp_path / "copy", path)
        return real(path)

    monkeypatch.setattr(features, "_entry_stat", replaced_during_the_read)
    assert features._read_entry(entry, first.key) is None and len(calls) == 2
    mine = _extract(TinyBackbone(), cfg, cache)  # its read is replaced too: extracted anew, the same features
    assert not mine.from_cache and torch.equal(mine.cls, first.cls) and len(calls) == 4
