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
