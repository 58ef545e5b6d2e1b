"""A resume refuses a changed key that changes what is trained (data, batch, seed, recipe, length) and lets the
rest change. `data.sources[i].index_cache` (only where the raster index is kept: a stored index is reused only
while the files and settings it was built from match) was refused like a data change; it is now free. The other
categories that cannot change what is trained (logging and monitoring, progress, workers, checkpoint cadence and
retention, the run's name) were free already and stay so; what changes the maths is still refused."""

from __future__ import annotations

from pathlib import Path

import pytest

from geodino.config import load_config, to_dict
from geodino.errors import CheckpointError
from geodino.train.checkpointing import check_resume_config
from geodino.train.pretrain import PretrainConfig
from tests.train.conftest import write_config


def _config(tmp_path: Path, *over: str) -> dict:
    (tmp_path / "data").mkdir(exist_ok=True)
    path = write_config(tmp_path / "c.yaml", tmp_path / "run", tmp_path / "data")
    return to_dict(load_config(PretrainConfig, path, list(over)))


def _check(tmp_path: Path, saved: tuple[str, ...], mine: tuple[str, ...]) -> None:
    ckpt = {"geodino": {"config": _config(tmp_path, *saved), "data": {"global_batch_size": 4}}}
    check_resume_config(ckpt, tmp_path / "step_00000001.ckpt", _config(tmp_path, *mine), 4)


@pytest.mark.parametrize(
    "saved, mine",
    [
        ((), ("data.sources[0].index_cache=/tmp/idx.json",)),  # cache added
        (("data.sources[0].index_cache=/a/idx.json",), ("data.sources[0].index_cache=/b/idx.json",)),  # moved
        (("data.sources[0].index_cache=/a/idx.json",), ()),  # dropped
    ],
)
def test_a_changed_index_cache_resumes(tmp_path, saved, mine) -> None:
    _check(tmp_path, saved, mine)


@pytest.mark.parametrize(
    "key",
    [
        "trainer.log_every_n_steps=7",  # logging
        "trainer.loggers=[csv]",
        "ssl.monitor.every=5",
        "trainer.progress_bar=false",  # progress
        "num_workers=3",  # workers
        "checkpoint.every_n_steps=5",  # checkpoint cadence and retention
        "checkpoint.keep_last=9",
        "name=renamed",
    ],
)
def test_keys_that_cannot_change_what_is_trained_resume(tmp_path, key) -> None:
    _check(tmp_path, (), (key,))


@pytest.mark.parametrize(
    "key",
    ["data.sources[0].tile_size=40", "data.sources[0].recursive=false", "data.shuffle=false", "seed=1",
     "ssl.optim.clip_grad=1.0", "crops.n_local=4", "trainer.max_steps=5"],
)  # fmt: skip
def test_keys_that_change_what_is_trained_are_still_refused(tmp_path, key) -> None:
    with pytest.raises(CheckpointError, match=key.split("=")[0].replace("[", r"\[").replace("]", r"\]")):
        _check(tmp_path, (), (key,))
