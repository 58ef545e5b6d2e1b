"""A finished distillation's re-run that changed a key a resume may change (logging, workers, ...) trains nothing,
yet rewrote config.yaml with that key, so config.yaml misstated what ran (pretraining keeps it since a5f1878). It
now writes no start file on a finished re-run, as pretraining: config.yaml keeps saying what ran; a run folder that
lost its config.yaml gets it (and the other start files) back."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodino.train.distill import distill
from tests.train.test_distill import _cfg

ONE = "students=[{name: tiny, arch: vit_tiny, drop_path_rate: 0.0, overrides: {depth: 1, n_storage_tokens: 1}}]"


@pytest.fixture(scope="module")
def finished(images, tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("rerun_config") / "run"
    distill(_cfg(images, out, ONE))
    return out


def test_a_finished_rerun_with_a_free_key_changed_keeps_config_yaml(finished, images) -> None:
    before = (finished / "config.yaml").read_bytes()
    assert b"log_every_n_steps: 1" in before
    distill(_cfg(images, finished, ONE, "train.log_every_n_steps=2"))
    assert (finished / "config.yaml").read_bytes() == before  # what ran: every step logged


def test_a_finished_run_folder_without_config_gets_it_back(finished, images) -> None:
    (finished / "config.yaml").unlink()
    (finished / "schedules.png").unlink()
    distill(_cfg(images, finished, ONE))
    assert (finished / "config.yaml").is_file() and (finished / "schedules.png").is_file()
