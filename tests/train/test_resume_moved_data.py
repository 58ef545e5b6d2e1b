"""A run whose data folder was moved (the old path gone) could never be resumed: the resume check compared
`data.sources[i].paths` as strings and told the user to resume with the run's own config.yaml, which names the old
path. A run now records at start what each data path names (`data_paths.json`: relative names and sizes); a moved
folder with the same files resumes bit-identically, one with other files is still refused naming the key, and a run
that records nothing (started before the stamp) is refused with a hint that works (a link at the old path)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch

from geodino.config import load_config
from geodino.errors import CheckpointError
from geodino.train.pretrain import PretrainConfig, pretrain
from geodino.train.resume_paths import STAMP, listing_digest
from tests.train.conftest import add_trainer_callback, ln_k_plateau, write_config


def _cfg(tmp_path: Path, out: str, data: Path) -> PretrainConfig:
    return load_config(
        PretrainConfig,
        write_config(tmp_path / f"{out}.yaml", tmp_path / out, data),
        ["trainer.max_steps=3", "checkpoint.export_at_end=false"],
    )


def _stopped_after_one_step(tmp_path: Path, data: Path, monkeypatch) -> None:
    import lightning as L

    class StopAfter(L.Callback):
        def on_train_batch_end(self, trainer, *args):
            if trainer.global_step >= 1:
                trainer.should_stop = True

    add_trainer_callback(monkeypatch, StopAfter())
    pretrain(_cfg(tmp_path, "b", data))
    monkeypatch.undo()


@ln_k_plateau
def test_a_moved_data_folder_resumes_bit_identically(tmp_path, tiny_data, monkeypatch) -> None:
    from geodino.train import checkpointing as ck

    full = pretrain(_cfg(tmp_path, "a", tiny_data))
    old = shutil.copytree(tiny_data, tmp_path / "old" / "scenes")
    _stopped_after_one_step(tmp_path, old, monkeypatch)
    assert (tmp_path / "b" / STAMP).is_file()
    new = tmp_path / "new" / "scenes"
    new.parent.mkdir()
    shutil.move(old, new)  # the old path is gone
    resumed = pretrain(_cfg(tmp_path, "b", new))
    a = ck.load_file(full / "checkpoints" / "last.ckpt")
    b = ck.load_file(resumed / "checkpoints" / "last.ckpt")
    assert a["global_step"] == b["global_step"] == 3
    for k, v in a["state_dict"].items():
        assert torch.equal(v, b["state_dict"][k]), k


def test_a_folder_with_other_files_is_still_refused(tmp_path, tiny_data, monkeypatch) -> None:
    old = shutil.copytree(tiny_data, tmp_path / "old")
    _stopped_after_one_step(tmp_path, old, monkeypatch)
    other = shutil.copytree(tiny_data, tmp_path / "other")
    next(other.glob("*.tif")).unlink()
    with pytest.raises(CheckpointError, match=r"data\.sources\[0\]\.paths=.*data_paths\.json"):
        pretrain(_cfg(tmp_path, "b", other))
    extra = shutil.copytree(tiny_data, tmp_path / "extra")
    (extra / "more.tif").write_bytes((tiny_data / "scene0.tif").read_bytes())
    with pytest.raises(CheckpointError, match=r"data\.sources\[0\]\.paths="):
        pretrain(_cfg(tmp_path, "b", extra))


def test_a_run_without_the_stamp_is_refused_with_a_link_hint(tmp_path, tiny_data, monkeypatch) -> None:
    old = shutil.copytree(tiny_data, tmp_path / "old")
    _stopped_after_one_step(tmp_path, old, monkeypatch)
    (tmp_path / "b" / STAMP).unlink()  # as a run started before geodino wrote it
    new = tmp_path / "new"
    shutil.move(old, new)
    with pytest.raises(CheckpointError, match=rf"old path '{old}' a symbolic link to the new folder"):
        pretrain(_cfg(tmp_path, "b", new))


def test_listing_digest(tmp_path, tiny_data) -> None:
    a = shutil.copytree(tiny_data, tmp_path / "a")
    b = shutil.copytree(tiny_data, tmp_path / "x" / "b")
    assert listing_digest(str(a)) == listing_digest(f"{b}/") is not None
    (b / "scene0.tif").rename(b / "renamed.tif")
    assert listing_digest(str(a)) != listing_digest(str(b))
    assert listing_digest(str(tmp_path / "missing")) is None
    assert listing_digest("s3://bucket/scenes") is None and listing_digest(f"{a}/*.tif") is None
