"""`init_from` of an HF/timm backbone that stores no `local_cls_norm` (neither layout does; a hub file of the SAT-493M
ViT-L does not record it) into a config with `untie_global_and_local_cls_norm: true`: the norm starts as a copy of
`norm`, with one warning saying so, as `geodino convert` to the official layout re-creates it. It was refused as
2 missing keys (local_cls_norm.weight, local_cls_norm.bias)."""

from __future__ import annotations

import warnings

import pytest
import torch

from geodino.config import load_config
from geodino.errors import CheckpointError
from geodino.models.build import build_model
from geodino.models.checkpoints.convert import convert_checkpoint
from geodino.train import checkpointing as ck
from geodino.train.pretrain import PretrainConfig
from geodino.train.pretrain_build import build_arch
from tests.train.conftest import write_config, write_rasters


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """A tiny backbone without local_cls_norm as an official .pth, an HF folder and a timm file, and its state."""
    root = tmp_path_factory.mktemp("lcn")
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, depth=2)
    with torch.no_grad():  # norm away from its init (ones/zeros), so the copy is told apart from a fresh norm
        model.norm.weight.uniform_(0.5, 1.5)
        model.norm.bias.uniform_(-0.5, 0.5)
    torch.save(model.state_dict(), root / "bb.pth")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        paths = {
            "official": root / "bb.pth",
            "hf": convert_checkpoint(root / "bb.pth", root / "hf", dst_layout="hf"),
            "timm": convert_checkpoint(root / "bb.pth", root / "timm.safetensors", dst_layout="timm"),
        }
    return paths, model.state_dict()


def _untied_arch(tmp_path):
    data = write_rasters(tmp_path / "data", n=1, size=32)
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "run", data)
    cfg.write_text(cfg.read_text().replace("{depth: 2}", "{depth: 2, untie_global_and_local_cls_norm: true}"))
    return build_arch(load_config(PretrainConfig, cfg))


@pytest.mark.parametrize("layout", ["hf", "timm"])
def test_local_cls_norm_starts_as_a_copy_of_norm(tmp_path, files, layout):
    paths, state = files
    arch = _untied_arch(tmp_path)
    src = ck.read_init_source(paths[layout])
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        ck.apply_init(arch, src)
    said = [str(w.message) for w in seen if "local_cls_norm" in str(w.message)]
    assert len(said) == 1 and "copy of norm" in said[0] and str(paths[layout]) in said[0], said
    for module in (arch.student["backbone"], arch.teacher["backbone"]):
        own = module.state_dict()
        for k in ("weight", "bias"):
            assert torch.equal(own[f"local_cls_norm.{k}"], state[f"norm.{k}"])
            assert torch.equal(own[f"norm.{k}"], state[f"norm.{k}"])
        assert torch.equal(own["blocks.1.attn.qkv.weight"], state["blocks.1.attn.qkv.weight"])


def test_an_official_file_without_it_is_still_refused(tmp_path, files):
    paths, _ = files
    arch = _untied_arch(tmp_path)
    with pytest.raises(CheckpointError, match=r"missing keys: local_cls_norm\.weight"):
        ck.apply_init(arch, ck.read_init_source(paths["official"]))
