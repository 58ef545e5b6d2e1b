"""crops.photometric=device: SSLModule applies the colour step after the transfer; the run equals loader mode."""

from __future__ import annotations

import csv

import torch


def test_pretrain_with_photometric_on_device_equals_loader_mode(tmp_path, tiny_data):
    from geodino.config import load_config
    from geodino.train import checkpointing as ck
    from geodino.train.pretrain import PretrainConfig, pretrain
    from tests.train.conftest import write_config

    def run(out: str, *extra: str):
        cfg = load_config(
            PretrainConfig,
            write_config(tmp_path / f"{out}.yaml", tmp_path / out, tiny_data),
            ["trainer.max_steps=2", "checkpoint.export_at_end=false", "crops.jitter_prob=1.0", *extra],
        )
        run_dir = pretrain(cfg)
        losses = [float(r["loss"]) for r in csv.DictReader(open(run_dir / "logs" / "metrics.csv"))]
        return losses, ck.load_file(run_dir / "checkpoints" / "last.ckpt")["state_dict"]

    loader_losses, a = run("loader")
    device_losses, b = run("device", "crops.photometric=device")
    assert len(loader_losses) == 2
    assert torch.allclose(torch.tensor(device_losses), torch.tensor(loader_losses), rtol=1e-5)
    for k, v in a.items():
        assert torch.allclose(v, b[k], rtol=1e-4, atol=1e-6), k
