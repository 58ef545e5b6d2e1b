"""geodino backbones inside torchgeo's trainers, TerraTorch's registry, timm and transformers, all offline."""

from __future__ import annotations

import enum
import sys
import types

import pytest
import torch

from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from tests.helpers import EXPORT_RECORD

REC = EXPORT_RECORD


@pytest.fixture(scope="module")
def model():
    torch.manual_seed(0)
    return build_model("vit_tiny", patch_size=8, in_chans=4, depth=4)


@pytest.fixture(scope="module")
def timm_dir(model, tmp_path_factory):
    return save_backbone(model, tmp_path_factory.mktemp("t") / "timm_dir", layout="timm", normalization=REC)


def test_torchgeo_classification_task_takes_the_timm_folder(model, timm_dir):
    from torchgeo.trainers import ClassificationTask

    task = ClassificationTask(model=f"local-dir:{timm_dir}", weights=True, in_channels=4, num_classes=3)
    assert torch.equal(task.model.patch_embed.proj.weight, model.patch_embed.proj.weight)  # pretrained weights
    assert list(task.model.pretrained_cfg["mean"]) == REC["mean"]
    batch = {"image": torch.rand(2, 4, 32, 32), "label": torch.tensor([0, 2])}
    loss = task.training_step(batch, 0)
    loss.backward()
    assert loss.ndim == 0 and task.model.get_classifier().weight.grad is not None


def test_torchgeo_segmentation_task_takes_the_timm_folder(model, timm_dir):
    from torchgeo.trainers import SemanticSegmentationTask

    task = SemanticSegmentationTask(
        model="dpt", backbone=f"tu-local-dir:{timm_dir}", weights=True, in_channels=4, num_classes=3
    )
    assert torch.equal(task.model.encoder.model.patch_embed.proj.weight, model.patch_embed.proj.weight)
    batch = {"image": torch.rand(2, 4, 32, 32), "mask": torch.randint(0, 3, (2, 32, 32))}
    assert task.model(batch["image"]).shape == (2, 3, 32, 32)
    loss = task.training_step(batch, 0)
    assert torch.isfinite(loss)


def test_timm_folder_tokens_match_geodino(model, timm_dir):
    import timm

    tm = timm.create_model(f"local-dir:{timm_dir}", pretrained=True).eval()
    x = torch.rand(1, 4, 32, 32)
    with torch.no_grad():
        ours = model.eval().forward_features(x)["x_norm_patchtokens"]
        theirs = tm.forward_features(x)[:, tm.num_prefix_tokens :]
    torch.testing.assert_close(theirs, ours, atol=1e-5, rtol=1e-5)


class HLSBands(enum.Enum):  # the shape of TerraTorch's band enums
    BLUE = "BLUE"
    GREEN = "GREEN"
    RED = "RED"
    NIR_NARROW = "NIR_NARROW"
    SWIR_1 = "SWIR_1"
    SWIR_2 = "SWIR_2"


def test_terratorch_factory_accepts_any_band_count(model, tmp_path):
    from geodino.integrations.terratorch import datamodule_stats, geodino_vit

    path = save_backbone(model, tmp_path / "bb.safetensors", normalization=REC)
    bands = [HLSBands.BLUE, HLSBands.GREEN, HLSBands.RED, HLSBands.NIR_NARROW, HLSBands.SWIR_1, HLSBands.SWIR_2]
    with pytest.warns(UserWarning, match=r"2 bands \(SWIR_1, SWIR_2\) match no band of checkpoint .* get the mean"):
        bb = geodino_vit(ckpt_path=str(path), bands=bands, out_indices=[1, 3], num_frames=1)
    assert bb.out_channels == [192, 192] and bb.in_chans == 6 and bb.model.training
    w = bb.model.patch_embed.proj.weight
    # matched bands keep their kernels (scaled by C_src / C_dst, the documented adaptation rule)
    torch.testing.assert_close(w[:, 2], model.patch_embed.proj.weight[:, 2] * 4 / 6)
    feats = bb(torch.rand(2, 6, 32, 32))
    assert [f.shape for f in feats] == [(2, 1 + 16, 192)] * 2  # class token first, then 4 x 4 patches
    # the same bands as the file: the weights are the file's
    same = geodino_vit(ckpt_path=str(path), bands=["BLUE", "GREEN", "RED", "NIR_NARROW"], return_cls_token=False)
    assert torch.equal(same.model.patch_embed.proj.weight, model.patch_embed.proj.weight)
    assert same(torch.rand(1, 4, 16, 16))[0].shape == (1, 4, 192)
    assert geodino_vit(ckpt_path=None, bands=3, arch="vit_tiny", patch_size=8).in_chans == 3
    means, stds = datamodule_stats(str(path))
    assert means[0] == pytest.approx(0.05 / 1e-4) and stds[3] == pytest.approx(0.1 / 1e-4)


def test_terratorch_count_without_names_is_a_one_line_error(model, tmp_path):
    from geodino.errors import ConfigError
    from geodino.integrations.terratorch import geodino_vit

    path = save_backbone(model, tmp_path / "bb.safetensors", normalization=REC)
    with pytest.raises(ConfigError, match="has 4 input bands but 6 were requested; name them"):
        geodino_vit(ckpt_path=str(path), bands=6)


def test_terratorch_registration_follows_its_registry_protocol(monkeypatch):
    """TerraTorch is not installed here: a stand-in `terratorch.registry` with its Registry behaviour (keyed by
    the constructor's __name__, `build(name, **kwargs)`) receives the registration made at import time."""

    class Registry(dict):
        def register(self, fn):
            self[fn.__name__] = fn
            return fn

        def build(self, name, *args, **kwargs):
            return self[name](*args, **kwargs)

    reg = Registry()
    fake = types.ModuleType("terratorch.registry")
    fake.TERRATORCH_BACKBONE_REGISTRY = reg
    monkeypatch.setitem(sys.modules, "terratorch", types.ModuleType("terratorch"))
    monkeypatch.setitem(sys.modules, "terratorch.registry", fake)
    monkeypatch.delitem(sys.modules, "geodino.integrations.terratorch", raising=False)
    import geodino.integrations.terratorch as tt

    assert "geodino_vit" in reg and reg["geodino_vit"] is tt.geodino_vit
    bb = reg.build("geodino_vit", bands=["RED", "NIR"], arch="vit_tiny", patch_size=8, pretrained=False)
    assert bb.in_chans == 2 and bb(torch.rand(1, 2, 16, 16))[0].shape == (1, 5, 192)
    monkeypatch.delitem(sys.modules, "geodino.integrations.terratorch", raising=False)
