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
