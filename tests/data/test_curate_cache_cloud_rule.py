"""geodino data curate: the embedding cache does not depend on the cloud rule (the backbone never sees it), so a
re-run with another --cloud-rule / --cloud-threshold reuses the embeddings and recomputes only the cloud shares."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd

from geodino import cli
from tests.data.test_curate import SPEC, _image_archive


def _argv(root, out, *extra):
    return [
        "data", "curate", str(root), "-b", SPEC, "-o", str(out), "--size", "6", "--clusters", "3",
        "--dedup", "0.999", "--chunk", "8", "--no-progress", *extra,
    ]  # fmt: skip


def _count_features(monkeypatch):
    from geodino.backbones import FrozenBackbone

    calls: list[int] = []
    original = FrozenBackbone.features
    monkeypatch.setattr(FrozenBackbone, "features", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    return calls


def test_another_cloud_rule_reuses_the_embeddings_and_matches_a_fresh_run(tmp_path, monkeypatch):
    root = _image_archive(tmp_path / "archive")
    out, fresh = tmp_path / "cur", tmp_path / "fresh"
    calls = _count_features(monkeypatch)
    assert cli.main(_argv(root, out, "--cloud-rule", "rgb")) == 0
    assert calls and json.loads((out / "report.json").read_text())["removed"]["cloud"] == 2
    calls.clear()
    assert cli.main(_argv(root, out, "--cloud-rule", "off")) == 0
    assert calls == []  # the backbone was not called: only the cloud shares were recomputed
    assert cli.main(_argv(root, fresh, "--cloud-rule", "off")) == 0
    again, new = (json.loads((d / "report.json").read_text()) for d in (out, fresh))
    assert again["removed"]["cloud"] == 0
    for key in ("removed", "kept", "levels", "top_clusters", "level1_clusters", "cloud_rules", "config"):
        assert again[key] == new[key], key
    a, b = (pd.read_parquet(d / "tiles.parquet") for d in (out, fresh))
    assert a.status.tolist() == b.status.tolist()
    np.testing.assert_array_equal(a.cloud_share.to_numpy(), b.cloud_share.to_numpy())
    # and back to the first rule with another threshold: still no backbone call, shares of that rule
    calls.clear()
    assert cli.main(_argv(root, out, "--cloud-rule", "rgb", "--cloud-threshold", "0.95")) == 0
    assert calls == []
    assert json.loads((out / "report.json").read_text())["removed"]["cloud"] == 2
    assert pd.read_parquet(out / "tiles.parquet").cloud_share.max() == 1.0


def test_a_chunk_lost_after_a_rule_change_is_embedded_alone(tmp_path, monkeypatch):
    root = _image_archive(tmp_path / "archive")
    out = tmp_path / "cur"
    assert cli.main(_argv(root, out, "--cloud-rule", "rgb")) == 0
    (out / "embeddings" / "part_00003.npz").unlink()
    calls = _count_features(monkeypatch)
    assert cli.main(_argv(root, out, "--cloud-rule", "off")) == 0
    assert len(calls) == 1  # the missing last chunk (4 tiles, one batch), the others' shares only
    tiles = pd.read_parquet(out / "tiles.parquet")
    assert (tiles.cloud_share == 0).all() and (tiles.status != "cloud").all()


def test_qa_shadow_on_a_cached_curation_reuses_the_embeddings(tmp_path, monkeypatch):
    from tests.data.test_curate_qa_shadow import _curate, _scene

    tif = _scene(tmp_path)
    out = tmp_path / "cur"
    _, tiles = _curate(tif, out)
    assert tiles.cloud_share.tolist() == [0.0, 0.0, 0.0, 1.0]
    calls = _count_features(monkeypatch)
    report, tiles = _curate(tif, out, "--qa-shadow")
    assert calls == [] and tiles.cloud_share.tolist() == [0.0, 1.0, 0.0, 1.0]  # the shadowed tile 1 now counts
    assert tiles.status.tolist() == ["kept", "cloud", "kept", "cloud"] and report["removed"]["cloud"] == 2
