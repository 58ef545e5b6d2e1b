"""results.json and results.md record the suite's device: features.fast=auto runs bf16 on a GPU and float32 on the
CPU, and neither the config hash nor the file said which (the same hash on both)."""

from __future__ import annotations

from geodino.config import load_config
from geodino.eval.runner import SuiteConfig, read_results, run_suite
from tests.eval.test_runner import _suite


def test_the_device_is_in_the_results_files(tmp_path, tiny_probe_backbone):
    cfg = load_config(SuiteConfig, _suite(tmp_path), ["progress=false", "only=[folder_knn_linear]"])
    run_suite(cfg, "tiny", tmp_path / "out")
    assert read_results(tmp_path / "out")["device"] == "cpu"  # before: no device key
    assert ", seed 0, device cpu, started " in (tmp_path / "out" / "results.md").read_text()
