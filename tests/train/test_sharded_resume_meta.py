"""Resuming from an FSDP2 sharded checkpoint (a folder, `checkpoint.sharded=true`): the start-up check reads the
folder's `meta.pt` only. Gathering the folder (`dcp_to_torch_save`) on every rank wrote and loaded the whole model
and optimizer once per process just to read the step and the run's config."""

from __future__ import annotations

import socket
from pathlib import Path
from typing import Any

import pytest
import torch

from geodino.config import load_config, to_dict
from geodino.errors import CheckpointError
from geodino.train.pretrain import PretrainConfig
from geodino.train.pretrain_folder import check_resume
from geodino.train.run_start import Start
from tests.train.conftest import write_config


def _sharded_folder(path: Path, meta: dict[str, Any]) -> Path:
    """A stand-in for Lightning's sharded checkpoint folder: DCP's `.metadata` (unread here) and rank 0's meta.pt."""
    path.mkdir(parents=True)
    (path / ".metadata").write_bytes(b"not read by the resume check")
    torch.save(meta, path / "meta.pt")
    return path


@pytest.fixture
def gathers(monkeypatch) -> list[tuple[str, str]]:
    """Every call of DCP's full conversion (the spy writes a small full checkpoint where it was asked to)."""
    import torch.distributed.checkpoint.format_utils as fu

    calls: list[tuple[str, str]] = []

    def spy(src: str, dst: str) -> None:
        calls.append((src, dst))
        torch.save({"state_dict": {"w": torch.zeros(1)}}, dst)

    monkeypatch.setattr(fu, "dcp_to_torch_save", spy)
    return calls


def _cfg(tmp_path: Path, tiny_data: Path, *over: str) -> PretrainConfig:
    return load_config(PretrainConfig, write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data), list(over))


def test_a_sharded_resume_reads_meta_only(tmp_path, tiny_data, gathers) -> None:
    """The step comes from meta.pt; the folder is never gathered for the check."""
    cfg = _cfg(tmp_path, tiny_data)
    meta = {"global_step": 2, "geodino": {"step": 2, "config": to_dict(cfg), "data": {"global_batch_size": 4}}}
    folder = _sharded_folder(tmp_path / "run" / "checkpoints" / "step_00000002.ckpt", meta)
    assert check_resume(cfg, tmp_path / "run", folder, {}, Start()) == 2
    assert gathers == []


def test_a_sharded_resume_still_checks_the_config(tmp_path, tiny_data, gathers) -> None:
    """meta.pt's config is the one checked: a changed batch size is still refused in one line."""
    saved = to_dict(_cfg(tmp_path, tiny_data))
    meta = {"global_step": 1, "geodino": {"config": saved, "data": {"global_batch_size": 4}}}
    folder = _sharded_folder(tmp_path / "run" / "checkpoints" / "step_00000001.ckpt", meta)
    cfg = _cfg(tmp_path, tiny_data, "batch_size=2")
    with pytest.raises(CheckpointError, match="batch_size=4 but this run has batch_size=2"):
        check_resume(cfg, tmp_path / "run", folder, {}, Start())
    assert gathers == []


def test_a_folder_without_meta_is_refused(tmp_path, tiny_data, gathers) -> None:
    cfg = _cfg(tmp_path, tiny_data, f"checkpoint.resume={tmp_path / 'x.ckpt'}")
    folder = tmp_path / "x.ckpt"
    folder.mkdir()
    with pytest.raises(CheckpointError, match=r"has no meta\.pt"):
        check_resume(cfg, tmp_path / "run", folder, {}, Start())


def test_the_full_conversion_names_its_temp_file_by_host_and_process(tmp_path, gathers) -> None:
    """Ranks on several nodes gather the same shared folder: the temporary file names the host, not only the pid."""
    from geodino.models.checkpoints.files import load_file

    folder = _sharded_folder(tmp_path / "step_00000001.ckpt", {"global_step": 1})
    full = load_file(folder)
    assert full["global_step"] == 1 and "state_dict" in full
    ((_, dst),) = gathers
    assert socket.gethostname() in Path(dst).name
    assert not Path(dst).exists()
