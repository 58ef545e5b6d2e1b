"""`init_from` of an HF or timm backbone (file or folder) and of a run folder: the backbone is converted to the
official layout as every backbone loader does, and a run folder stands for its `last.ckpt` (both were refused:
the HF/timm files as "trained with another architecture", the folders as "no meta.pt")."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.config import load_config
from geodino.errors import CheckpointError
from geodino.models.checkpoints.convert import convert_checkpoint
from geodino.train import checkpointing as ck
from geodino.train.pretrain import PretrainConfig
from geodino.train.pretrain_build import build_arch
from tests.train.conftest import write_config


@pytest.fixture(scope="module")
def converted(tiny_run, tmp_path_factory):
    """The tiny run's exported teacher in the HF (folder) and timm (file and folder) layouts, and that teacher."""
    root = tmp_path_factory.mktemp("converted")
    export = tiny_run / "export" / "teacher.pth"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # timm drops the (non-zero) mask token, and says so
        paths = {
            "hf": convert_checkpoint(export, root / "hf", dst_layout="hf"),
            "timm": convert_checkpoint(export, root / "timm.safetensors", dst_layout="timm"),
            "timm_dir": convert_checkpoint(export, root / "timm_dir", dst_layout="timm"),
        }
    paths["hf_file"] = paths["hf"] / "model.safetensors"
    teacher = ck.sub_state(ck.load_file(tiny_run / "checkpoints" / "last.ckpt")["state_dict"], "arch.teacher.backbone.")
    return paths, teacher


def _arch(tmp_path, tiny_data):
    return build_arch(load_config(PretrainConfig, write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)))


@pytest.mark.parametrize("which", ["hf", "hf_file", "timm", "timm_dir"])
def test_init_from_hf_and_timm_backbones(tmp_path, tiny_data, converted, which):
    paths, teacher = converted
    arch = _arch(tmp_path, tiny_data)
    src = ck.read_init_source(paths[which])
    lines = ck.apply_init(arch, src)
    layout = "timm" if which.startswith("timm") else "hf"
    assert src.layout == layout and not src.has_heads
    assert "converted to the official one" in lines[0]
    for module in (arch.student["backbone"], arch.teacher["backbone"]):
        own = module.state_dict()
        for k, v in teacher.items():
            if layout == "timm" and k == "mask_token":  # timm stores none: it starts at zero, and the log says so
                assert not own[k].any()
                continue
            assert torch.equal(own[k], v), (which, k)
    if layout == "timm":
        assert any("stores no mask_token" in line for line in lines)


def test_init_from_a_run_folder_is_its_last_checkpoint(tmp_path, tiny_data, tiny_run):
    last = tiny_run / "checkpoints" / "last.ckpt"
    for folder in (tiny_run, tiny_run / "checkpoints"):
        src = ck.read_init_source(folder)
        assert src.kind == "training" and src.path == last and src.student
    empty = tmp_path / "fresh_run"
    (empty / "checkpoints").mkdir(parents=True)
    with pytest.raises(CheckpointError, match=r"init_from run folder .*fresh_run has no checkpoint yet"):
        ck.read_init_source(empty)
    other = tmp_path / "pictures"
    other.mkdir()
    with pytest.raises(CheckpointError, match=r"init_from folder .*pictures is neither a geodino run folder"):
        ck.read_init_source(other)


def test_wrapped_backbone_for_init_from_and_gram_ckpt(tmp_path, tiny_data, converted):
    """{"model": state_dict} (a common wrapper) was refused by init_from ('holds no tensors'); gram.ckpt, which
    read it before, keeps reading it now that it goes through the same reader."""
    _, teacher = converted
    wrapped = tmp_path / "wrapped.pth"
    torch.save({"model": teacher}, wrapped)
    arch = _arch(tmp_path, tiny_data)
    ck.apply_init(arch, ck.read_init_source(wrapped))
    own = arch.student["backbone"].state_dict()
    assert all(torch.equal(own[k], v) for k, v in teacher.items())
    cfg = write_config(tmp_path / "g.yaml", tmp_path / "run", tiny_data)
    overrides = ["ssl.gram.use_loss=true", f"ssl.gram.ckpt={wrapped}"]
    arch = build_arch(load_config(PretrainConfig, cfg, overrides))
    own = arch.gram_teacher["backbone"].state_dict()
    assert all(torch.equal(own[k], v) for k, v in teacher.items())
    torch.save({"epoch": 3}, tmp_path / "no_tensors.pth")
    with pytest.raises(CheckpointError, match=r"no_tensors.pth holds no tensors"):
        ck.read_init_source(tmp_path / "no_tensors.pth")


def test_foreign_lightning_checkpoint_with_a_backbone(tmp_path, tiny_data, converted):
    """A Lightning checkpoint of another trainer holding the backbone under a prefix (`model.backbone.*`) was
    refused ('not written by geodino pretrain') although the backbone loaders read it; one holding none still is."""
    _, teacher = converted
    good, bad = tmp_path / "other.ckpt", tmp_path / "other_bad.ckpt"
    torch.save({"state_dict": {f"model.backbone.{k}": v for k, v in teacher.items()}, "epoch": 1}, good)
    torch.save({"state_dict": {"head.weight": torch.zeros(2)}, "epoch": 1}, bad)
    arch = _arch(tmp_path, tiny_data)
    ck.apply_init(arch, ck.read_init_source(good))
    own = arch.teacher["backbone"].state_dict()
    assert all(torch.equal(own[k], v) for k, v in teacher.items())
    with pytest.raises(CheckpointError, match=r"other_bad.ckpt is a Lightning checkpoint not written by geodino"):
        ck.read_init_source(bad)


def test_other_bands_named_with_what_to_do(tmp_path, tiny_data):
    """A backbone file (no recorded architecture) of other bands: one line naming the file, the band counts and
    `geodino convert --bands` (was the generic 'trained with another architecture ... set ssl.student.arch=
    from_init', which then fails on the data's bands)."""
    override = "ssl.student.in_chans=4"
    said = r"takes 4 input bands but this config builds 3 .*geodino convert .*--bands"
    cfg = write_config(tmp_path / "o.yaml", tmp_path / "other", tiny_data)
    other = build_arch(load_config(PretrainConfig, cfg, [override]))
    path = tmp_path / "other.pth"
    torch.save(other.teacher["backbone"].state_dict(), path)
    arch = _arch(tmp_path, tiny_data)
    with pytest.raises(CheckpointError, match=rf"^init_from {path} {said}"):
        ck.apply_init(arch, ck.read_init_source(path))


def test_python_api_sees_the_heads_of_a_run_folder(tiny_run, converted):
    """`geodino.train.api.pretrain(init_from=runs/NAME)` judged a run folder headless (its suffix is not .ckpt) and
    froze the backbone for a heads warm-up it does not need; an HF folder has no heads."""
    from geodino.train.api import _has_heads

    paths, _ = converted
    assert _has_heads(tiny_run) and _has_heads(tiny_run / "checkpoints")
    assert _has_heads(tiny_run / "checkpoints" / "last.ckpt")
    assert not _has_heads(paths["hf"]) and not _has_heads(paths["timm_dir"])


def test_a_run_folder_passes_its_extent_on(tmp_path, tiny_data, tiny_run, monkeypatch):
    """The extent a run starts from is joined from init_from's checkpoint: for a run folder its last.ckpt (the folder
    itself was read as a sharded checkpoint without meta.pt: no extent, silently)."""
    from geodino.train import data_extent, pretrain_build

    seen = []
    monkeypatch.setattr(data_extent, "training_extent", lambda sources, start=None: seen.append(start) or {})
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", tiny_data)
    pretrain_build.probe_data(load_config(PretrainConfig, cfg, [f"init_from={tiny_run}"]))
    assert seen == [tiny_run / "checkpoints" / "last.ckpt"]
    assert data_extent.export_extent(seen[0]) is not None  # what the stage joins: the run's recorded extent
