"""A finished distillation's re-run that changed a key a resume may change (logging, workers, ...) trains nothing,
yet rewrote config.yaml with that key, so config.yaml misstated what ran (pretraining keeps it since a5f1878). It
now writes no start file on a finished re-run, as pretraining: config.yaml keeps saying what ran; a run folder that
lost its config.yaml gets it (and the other start files) back."""

from __future__ import annotations

from geodino.train.distill import distill
from tests.train.conftest import ONE_STUDENT
from tests.train.test_distill import _cfg


def test_a_finished_rerun_with_a_free_key_changed_keeps_config_yaml(finished_distill, images) -> None:
    before = (finished_distill / "config.yaml").read_bytes()
    assert b"log_every_n_steps: 1" in before
    distill(_cfg(images, finished_distill, ONE_STUDENT, "train.log_every_n_steps=2"))
    assert (finished_distill / "config.yaml").read_bytes() == before  # what ran: every step logged


def test_a_finished_run_folder_without_config_gets_it_back(finished_distill, images) -> None:
    (finished_distill / "config.yaml").unlink()
    (finished_distill / "schedules.png").unlink()
    distill(_cfg(images, finished_distill, ONE_STUDENT))
    assert (finished_distill / "config.yaml").is_file() and (finished_distill / "schedules.png").is_file()
