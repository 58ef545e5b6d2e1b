"""A resume whose data paths are spelled differently but name the same folder (`scenes/` for `scenes`, `~/x` for
`/home/me/x`) is the same run: it was refused in one line as a changed `data.sources[0].paths`. A path that names
another folder (the data moved) is still refused, naming the key."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
import torch

from geodino.config import load_config, to_dict
from geodino.errors import CheckpointError
from geodino.train.pretrain import PretrainConfig
from geodino.train.pretrain_folder import check_resume
from geodino.train.resume_paths import same_paths_as_saved, spelling
from geodino.train.run_start import Start
from tests.train.conftest import write_config


def _cfg(tmp_path: Path, data: str) -> PretrainConfig:
    return load_config(PretrainConfig, write_config(tmp_path / "c.yaml", tmp_path / "run", Path("x")), [
        f"data.sources=[{{type: raster, paths: ['{data}'], tile_size: 48, sensor: imagenet}}]"
    ])  # fmt: skip


def _checkpoint(tmp_path: Path, cfg: PretrainConfig) -> Path:
    path = tmp_path / "run" / "checkpoints" / "step_00000001.ckpt"
    path.parent.mkdir(parents=True)
    meta = {"step": 1, "config": to_dict(cfg), "data": {"global_batch_size": 4}}
    torch.save({"global_step": 1, "geodino": meta}, path)
    return path


@pytest.mark.parametrize("spelled", ["{d}/", "{d}//", "{d}/./"])
def test_pretrain_resumes_with_the_same_folder_spelled_otherwise(tmp_path, tiny_data, spelled) -> None:
    ckpt = _checkpoint(tmp_path, _cfg(tmp_path, str(tiny_data)))
    cfg = _cfg(tmp_path, spelled.format(d=tiny_data, n=tiny_data.name))
    assert check_resume(cfg, tmp_path / "run", ckpt, {}, Start()) == 1


def test_pretrain_still_refuses_a_moved_data_folder(tmp_path, tiny_data) -> None:
    ckpt = _checkpoint(tmp_path, _cfg(tmp_path, str(tiny_data)))
    cfg = _cfg(tmp_path, str(tmp_path / "elsewhere"))
    with pytest.raises(CheckpointError, match=r"data\.sources\[0\]\.paths="):
        check_resume(cfg, tmp_path / "run", ckpt, {}, Start())


def test_spellings() -> None:
    home = os.path.expanduser("~")
    assert spelling("~/scenes/") == spelling(f"{home}/scenes")
    assert spelling("scenes/") == spelling("./scenes") == "scenes"
    assert spelling("a/../scenes") != spelling("scenes")  # `a` may be a link
    assert spelling("s3://bucket/scenes/") == "s3://bucket/scenes" != spelling("s3:/bucket/scenes")
    assert spelling("/vsis3/bucket//x/") == "/vsis3/bucket//x"


def test_only_equal_spellings_are_aligned_and_the_config_is_not_changed() -> None:
    saved = {"data": {"sources": [{"paths": ["a", "b"]}, {"paths": ["c"]}]}}
    mine = {"data": {"sources": [{"paths": ["a/", "./b"]}, {"paths": ["d"]}]}, "seed": 0}
    out = same_paths_as_saved(saved, mine)
    assert out["data"]["sources"][0]["paths"] == ["a", "b"]
    assert out["data"]["sources"][1]["paths"] == ["d"]  # another folder: left to differ
    assert mine["data"]["sources"][0]["paths"] == ["a/", "./b"]


def test_distill_resumes_with_the_same_folder_spelled_otherwise(tmp_path) -> None:
    from geodino.train.distill.export import FORMAT, check_resume_config

    path = tmp_path / "step_00000001.ckpt"
    torch.save({"format": FORMAT, "config": {"data": {"sources": [{"paths": ["/data/scenes"]}]}}}, path)
    check_resume_config(path, {"data": {"sources": [{"paths": ["/data/scenes/"]}]}})
    with pytest.raises(CheckpointError, match=r"data\.sources\[0\]\.paths="):
        check_resume_config(path, {"data": {"sources": [{"paths": ["/moved/scenes"]}]}})
