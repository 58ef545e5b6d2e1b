"""geodino_vit against what TerraTorch 1.2.x does with a backbone (checked against its 1.2.13 source): the deploy
config's `backbone_pretrained: false`, the factory's padding to `backbone_patch_size`, the extra batch keys its
tasks pass to `forward`, and `prepare_features_for_image_model` when a config has no necks."""

from __future__ import annotations

import builtins

import pytest
import torch

from geodino.errors import ConfigError
from geodino.integrations import terratorch as tt
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=3, depth=3, n_storage_tokens=2)
    return str(save_backbone(model, tmp_path_factory.mktemp("e") / "b.safetensors")), model


def test_not_pretrained_is_the_checkpoints_architecture_at_random_init(export):
    """TerraTorch's deploy config rewrites backbone_pretrained to false and then loads the fine-tuned weights: the
    model must have the checkpoint's shape (a vit_small/16 was built before, and the load failed)."""
    path, model = export
    torch.manual_seed(1)
    bb = tt.geodino_vit(ckpt_path=path, pretrained=False)
    got, want = bb.model.state_dict(), model.state_dict()
    assert {k: v.shape for k, v in got.items()} == {k: v.shape for k, v in want.items()}
    assert not torch.equal(got["blocks.0.attn.qkv.weight"], want["blocks.0.attn.qkv.weight"])  # not its weights
    bb.model.load_state_dict(want)  # what the deploy config then does
    assert torch.equal(tt.geodino_vit(ckpt_path=path).model.state_dict()["cls_token"], want["cls_token"])


def test_a_patch_size_other_than_the_checkpoints_is_refused(export):
    path, _ = export
    with pytest.raises(ConfigError, match=r"patch_size=12 but .* has patch size 8; drop backbone_patch_size"):
        tt.geodino_vit(ckpt_path=path, patch_size=12)
    assert tt.geodino_vit(ckpt_path=path, patch_size=8).patch_size == 8
    assert tt.geodino_vit(arch="vit_tiny", bands=3).patch_size == 16  # no checkpoint: patch 16 unless given


@pytest.mark.parametrize("cls", [True, False])
def test_forward_takes_batch_keys_and_the_tokens_reshape_to_the_input_grid(export, cls):
    """Tasks call the model with every batch key (`metadata` with return_georeference=True); without necks the
    pixel-wise model reshapes through `prepare_features_for_image_model`: a 32 x 48 input is a 4 x 6 grid."""
    path, model = export
    bb = tt.geodino_vit(ckpt_path=path, out_indices=[0, 2], return_cls_token=cls).eval()
    x = torch.randn(2, 3, 32, 48)
    outs = bb(x, metadata={"crs": "EPSG:32633"}, temporal_coords=None)
    maps = bb.prepare_features_for_image_model(outs)
    assert [tuple(m.shape) for m in maps] == [(2, 192, 4, 6)] * 2
    patches = model.eval().get_intermediate_layers(x, n=[0, 2], reshape=True)
    for m, p in zip(maps, patches):
        torch.testing.assert_close(m, p)


def test_registration_says_why_a_broken_terratorch_does_not_import(monkeypatch):
    """Not installed: nothing registered, False. Installed but broken (a dependency missing): the error, not a
    silent False that TerraTorch later reports as 'geodino_vit could not be instantiated from any source'."""
    real = builtins.__import__

    def missing(name, *args, **kwargs):
        if name.startswith("terratorch"):
            raise ModuleNotFoundError(f"No module named {name!r}", name=name)
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", missing)
    assert tt.register() is False

    def broken(name, *args, **kwargs):
        if name.startswith("terratorch"):
            raise ModuleNotFoundError(
                "No module named 'segmentation_models_pytorch'", name="segmentation_models_pytorch"
            )
        return real(name, *args, **kwargs)

    monkeypatch.setattr(builtins, "__import__", broken)
    with pytest.raises(ModuleNotFoundError, match="segmentation_models_pytorch"):
        tt.register()
