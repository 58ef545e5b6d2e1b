"""geodino_vit inside the real TerraTorch: its registries, EncoderDecoderFactory decoders, SemanticSegmentationTask
and the `terratorch fit` CLI with a custom-modules folder, offline on generated data.

Runs only where TerraTorch is importable (it is not a geodino dependency): `tools/check_terratorch.sh` builds a
scratch venv with it and runs this file. The stand-in registry test in test_plugins.py runs everywhere.
"""

from __future__ import annotations

import sys
import textwrap
import warnings

import pytest
import torch

from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from tests.helpers import EXPORT_RECORD

pytest.importorskip("terratorch")
pytest.importorskip("geodino.integrations.terratorch")  # registers geodino_vit in TerraTorch's registry

REC = EXPORT_RECORD
BANDS6 = ["BLUE", "GREEN", "RED", "NIR_NARROW", "SWIR_1", "SWIR_2"]
PYRAMID = [{"name": "ReshapeTokensToImage"}, {"name": "LearnedInterpolateToPyramidal"}]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    """A 4-band vit_tiny (patch 8, 4 blocks) exported with its normalisation record, and the model itself."""
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=4)
    return save_backbone(model, tmp_path_factory.mktemp("tt") / "bb.safetensors", normalization=REC), model


def _bb_weight(m: torch.nn.Module) -> torch.Tensor:
    return m.encoder.model.patch_embed.proj.weight


def test_registered_in_terratorch_registries(export):
    from terratorch.registry import BACKBONE_REGISTRY, TERRATORCH_BACKBONE_REGISTRY

    path, model = export
    assert "geodino_vit" in TERRATORCH_BACKBONE_REGISTRY and "geodino_vit" in BACKBONE_REGISTRY
    for name in ("geodino_vit", "terratorch_geodino_vit"):  # bare and source-prefixed names both resolve
        bb = BACKBONE_REGISTRY.build(name, ckpt_path=str(path), bands=BANDS6, out_indices=[1, 3])
        assert bb.out_channels == [192, 192] and bb.in_chans == 6
    # matched bands keep their kernels, scaled by C_src / C_dst (the documented adaptation rule)
    torch.testing.assert_close(bb.model.patch_embed.proj.weight[:, 3], model.patch_embed.proj.weight[:, 3] * 4 / 6)


@pytest.mark.parametrize(
    ("decoder", "necks", "size"),
    [
        ("FCNDecoder", [{"name": "SelectIndices", "indices": [-1]}, {"name": "ReshapeTokensToImage"}], 32),
        ("UperNetDecoder", PYRAMID, 32),
        ("UperNetDecoder", PYRAMID, 30),  # not a multiple of the patch: TerraTorch pads and crops back
    ],
)
def test_encoder_decoder_factory_any_band_count(export, decoder, necks, size):
    from terratorch.models import EncoderDecoderFactory

    path, model = export
    m = EncoderDecoderFactory().build_model(
        task="segmentation",
        backbone="geodino_vit",
        backbone_ckpt_path=str(path),
        backbone_bands=BANDS6,
        backbone_out_indices=[0, 1, 2, 3],
        necks=necks,
        decoder=decoder,
        num_classes=3,
    )
    torch.testing.assert_close(_bb_weight(m)[:, 0], model.patch_embed.proj.weight[:, 0] * 4 / 6)
    out = m(torch.rand(2, 6, size, size)).output
    assert out.shape == (2, 3, size, size) and torch.isfinite(out).all()


def _task(path, **extra):
    from terratorch.tasks import SemanticSegmentationTask

    args = dict(
        backbone="geodino_vit",
        backbone_ckpt_path=str(path),
        backbone_bands=BANDS6,
        backbone_out_indices=[0, 1, 2, 3],
        necks=PYRAMID,
        decoder="UperNetDecoder",
        num_classes=3,
    )
    # ignore_index: TerraTorch 1.2.13 hands its default None to nn.CrossEntropyLoss, which torch refuses
    return SemanticSegmentationTask(model_factory="EncoderDecoderFactory", model_args=args, loss="ce",
                                    ignore_index=-1, lr=1e-3, **extra)  # fmt: skip


def test_semantic_segmentation_task_trains_the_backbone(export):
    path, _ = export
    task = _task(path)
    opt = task.configure_optimizers()
    opt = opt["optimizer"] if isinstance(opt, dict) else opt
    before = _bb_weight(task.model).detach().clone()
    torch.manual_seed(1)
    batch = {"image": torch.rand(2, 6, 32, 32), "mask": torch.randint(0, 3, (2, 32, 32))}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # self.log outside a Trainer
        loss = task.training_step(batch, 0)
    assert loss.ndim == 0 and torch.isfinite(loss)
    loss.backward()
    assert _bb_weight(task.model).grad is not None and _bb_weight(task.model).grad.abs().sum() > 0
    opt.step()
    assert not torch.equal(_bb_weight(task.model), before)  # the geodino backbone is fine-tuned


def test_terratorch_fit_cli_with_custom_modules(export, tmp_path, monkeypatch):
    """`terratorch fit --config cfg.yaml --custom_modules_path custom_modules`: the documented route, with a
    generated-data datamodule in the custom-modules package, one training and one validation step."""
    from terratorch.cli_tools import build_lightning_cli

    path, _ = export
    mods = tmp_path / "custom_modules"
    mods.mkdir()
    (mods / "__init__.py").write_text(
        textwrap.dedent(
            """
            import geodino.integrations.terratorch  # registers geodino_vit
            import lightning.pytorch as pl
            import torch
            from torch.utils.data import DataLoader


            class TinySeg(torch.utils.data.Dataset):
                def __len__(self):
                    return 4

                def __getitem__(self, i):
                    g = torch.Generator().manual_seed(i)
                    image = torch.rand(6, 32, 32, generator=g)
                    return {"image": image, "mask": torch.randint(0, 3, (32, 32), generator=g)}


            class TinySegDataModule(pl.LightningDataModule):
                def train_dataloader(self):
                    return DataLoader(TinySeg(), batch_size=2)

                def val_dataloader(self):
                    return DataLoader(TinySeg(), batch_size=2)
            """
        )
    )
    cfg = tmp_path / "cfg.yaml"
    cfg.write_text(
        textwrap.dedent(
            f"""
            trainer:
              accelerator: cpu
              fast_dev_run: true
              logger: false
              enable_checkpointing: false
              default_root_dir: {tmp_path / "runs"}
            data:
              class_path: custom_modules.TinySegDataModule
            model:
              class_path: terratorch.tasks.SemanticSegmentationTask
              init_args:
                model_factory: EncoderDecoderFactory
                loss: ce
                ignore_index: -1
                model_args:
                  backbone: geodino_vit
                  backbone_ckpt_path: {path}
                  backbone_bands: [BLUE, GREEN, RED, NIR_NARROW, SWIR_1, SWIR_2]
                  backbone_out_indices: [0, 1, 2, 3]
                  necks:
                    - name: ReshapeTokensToImage
                    - name: LearnedInterpolateToPyramidal
                  decoder: UperNetDecoder
                  num_classes: 3
            """
        )
    )
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(sys, "argv", ["terratorch"])  # LightningCLI warns about pytest's own arguments otherwise
    monkeypatch.syspath_prepend(str(tmp_path))
    cli = build_lightning_cli(["fit", "--config", str(cfg), "--custom_modules_path", str(mods)])
    assert cli.trainer.state.finished and cli.trainer.global_step == 1
    assert type(cli.model.model.encoder).__name__ == "GeoDinoTerraTorchBackbone"
    assert torch.isfinite(cli.trainer.callback_metrics["train/loss"])


def test_factory_takes_backbone_pretrained_bands_for_a_state_dict_without_a_record(tmp_path):
    """`backbone_pretrained_bands` (TerraTorch's key for a checkpoint's bands, as for Prithvi) names the kernels of a
    plain state_dict saved in B, G, R order: the model's R, G, B take the file's kernels 2, 1, 0."""
    from terratorch.models import EncoderDecoderFactory

    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=3, depth=2)
    torch.save(model.state_dict(), tmp_path / "bgr.pth")
    m = EncoderDecoderFactory().build_model(
        task="segmentation",
        backbone="geodino_vit",
        backbone_ckpt_path=str(tmp_path / "bgr.pth"),
        backbone_pretrained_bands=["BLUE", "GREEN", "RED"],
        backbone_bands=["RED", "GREEN", "BLUE"],
        necks=[{"name": "SelectIndices", "indices": [-1]}, {"name": "ReshapeTokensToImage"}],
        decoder="FCNDecoder",
        num_classes=2,
    )
    torch.testing.assert_close(_bb_weight(m), model.patch_embed.proj.weight.flip(1))


@pytest.mark.parametrize("pooling", [None, "mean"])
def test_embedding_generation_task_with_has_cls(export, tmp_path, pooling):
    """TerraTorch's EmbeddingGenerationTask needs has_cls: true with geodino_vit (class token first; its default
    false fails on GeoTIFF maps and averages the class token in): the maps / mean are the backbone's own."""
    from terratorch.tasks import EmbeddingGenerationTask

    path, model = export
    task = EmbeddingGenerationTask(
        model_args={"backbone": "geodino_vit", "backbone_ckpt_path": str(path)},
        output_dir=str(tmp_path / "emb"),
        has_cls=True,
        embedding_pooling=pooling,
        output_format="tiff" if pooling is None else "parquet",
    ).eval()
    x = torch.rand(2, 4, 32, 32)
    with torch.no_grad():
        out = task.model(x)
        patches = model.eval().get_intermediate_layers(x, n=[3], reshape=True)[0]
    got = out.output if hasattr(out, "output") else out
    got = got[0] if isinstance(got, (list, tuple)) else got
    want = patches if pooling is None else patches.flatten(2).mean(-1)
    torch.testing.assert_close(got, want)


@pytest.mark.parametrize(
    "peft",
    [
        {"method": "LORA", "peft_config_kwargs": {"target_modules": ["qkv"], "r": 4, "lora_alpha": 8}},
        {"method": "LORA", "replace_qkv": "qkv", "peft_config_kwargs": {"target_modules": ["q_linear", "v_linear"]}},
    ],
)
def test_peft_lora_on_the_geodino_backbone(export, peft):
    """`peft_config` (LoRA on the fused qkv, or on q and v after TerraTorch's replace_qkv): only the adapters train,
    and at their initialisation (B = 0) the tokens are the pretrained backbone's."""
    pytest.importorskip("peft")
    from terratorch.models import EncoderDecoderFactory

    path, model = export
    m = EncoderDecoderFactory().build_model(
        task="segmentation",
        backbone="geodino_vit",
        backbone_ckpt_path=str(path),
        backbone_pretrained=True,  # TerraTorch warns about PEFT on a backbone without it
        backbone_out_indices=[3],
        necks=[{"name": "ReshapeTokensToImage"}],
        decoder="FCNDecoder",
        num_classes=2,
        peft_config=peft,
    )
    trainable = [n for n, p in m.encoder.named_parameters() if p.requires_grad]
    assert trainable and all("lora_" in n for n in trainable)
    x = torch.rand(2, 4, 32, 32)
    m.eval()
    with torch.no_grad():
        got = m.encoder(x)[0]
        want = model.eval().get_intermediate_layers(x, n=[3], return_class_token=True)[0]
    torch.testing.assert_close(got[:, 1:], want[0], atol=1e-5, rtol=1e-5)
    m.train()
    m(x).output.mean().backward()
    assert all(p.grad is not None for n, p in m.encoder.named_parameters() if "lora_A" in n)


def test_without_the_class_token_the_neck_keeps_every_token(export):
    """backbone_return_cls_token: false pairs with ReshapeTokensToImage(remove_cls_token: false), as documented."""
    from terratorch.models import EncoderDecoderFactory

    path, model = export
    m = (
        EncoderDecoderFactory()
        .build_model(
            task="segmentation",
            backbone="geodino_vit",
            backbone_ckpt_path=str(path),
            backbone_return_cls_token=False,
            backbone_out_indices=[3],
            necks=[{"name": "ReshapeTokensToImage", "remove_cls_token": False}],
            decoder="IdentityDecoder",
            num_classes=2,
        )
        .eval()
    )
    x = torch.rand(2, 4, 32, 48)
    with torch.no_grad():
        maps = m.neck(m.encoder(x), image_size=(32, 48))  # PixelWiseModel's neck, as its forward calls it
        want = model.eval().get_intermediate_layers(x, n=[3], reshape=True)[0]
    torch.testing.assert_close(maps[0], want)


def test_freeze_backbone_keeps_the_frozen_vit_in_eval_mode(export):
    """SemanticSegmentationTask(freeze_backbone=True) calls encoder.freeze(): in train mode the frozen ViT gives the
    eval-mode tokens (no RoPE box jittering), and only the decoder and head train."""
    path, _ = export
    task = _task(path, freeze_backbone=True)
    task.train()
    enc = task.model.encoder
    assert not enc.model.training and not any(p.requires_grad for p in enc.parameters())
    x = torch.rand(2, 6, 32, 32)
    with torch.no_grad():
        a, b = enc(x)[-1], enc(x)[-1]
    torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert any(p.requires_grad for p in task.model.decoder.parameters())
