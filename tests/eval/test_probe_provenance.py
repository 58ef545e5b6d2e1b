"""What a probe run's outputs record for a reproduction: results.json names the torch and scikit-learn versions and
the backbone weights file's own sha256, and the feature cache is the same bytes for the same features (safetensors
wrote its metadata keys in another order at every write)."""

from __future__ import annotations

import hashlib
from importlib.metadata import version

import torch

from geodino.config import load_config
from geodino.eval import features
from geodino.eval.runner import SuiteConfig, read_results, run_suite
from tests.eval.test_runner import _suite


def test_results_record_library_versions_and_the_weights_files_sha256(tmp_path, monkeypatch):
    from geodino.eval import runner
    from tests.eval.tiny_backbone import TinyBackbone

    weights = hashlib.sha256(b"weights").hexdigest()

    def load(*a):
        bb = TinyBackbone(spec="tiny")
        bb.weights_sha256 = weights  # as FrozenBackbone.weights_sha256 of a checkpoint file
        return bb

    monkeypatch.setattr(runner, "load_probe_backbone", load)
    cfg = load_config(SuiteConfig, _suite(tmp_path), ["progress=false", "only=[folder_knn_linear]"])
    run_suite(cfg, "tiny", tmp_path / "out")
    got = read_results(tmp_path / "out")
    assert got["model_file_sha256"] == weights
    assert got["versions"]["torch"] == version("torch") and got["versions"]["scikit-learn"] == version("scikit-learn")


def test_results_of_a_backbone_without_a_weights_file_name_no_sha256(tmp_path):
    from geodino.eval.results import write_results

    write_results(tmp_path, SuiteConfig(name="s"), "arch:vit_tiny", "fp", [], "now", {}, {}, weights_sha256=None)
    got = read_results(tmp_path)
    assert "model_file_sha256" not in got and set(got["versions"]) == {"torch", "scikit-learn", "numpy"}


def test_the_same_features_give_the_same_cache_file(tmp_path):
    fs = features.FeatureSet(
        cls=torch.arange(12.0).reshape(3, 1, 4),
        patch_mean=torch.ones(3, 1, 4),
        targets=torch.tensor([0, 1, 0]),
        layers=[3],
        key="k",
        meta={"dataset": "d", "transform": "t", "fingerprint": "f", "path": "float32"},
    )
    written = set()
    for i in range(6):  # the metadata's order was Rust's hash order: another at (nearly) every write
        features._save(tmp_path / f"{i}.safetensors", fs)
        written.add((tmp_path / f"{i}.safetensors").read_bytes())
    assert len(written) == 1
    back = features._load(tmp_path / "0.safetensors", "k")  # and it still reads back as the cache entry
    assert back is not None and back.meta == fs.meta and back.layers == [3]
    assert torch.equal(back.cls, fs.cls)
