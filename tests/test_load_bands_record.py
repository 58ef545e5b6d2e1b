"""load_backbone(..., bands=...) on a file whose normalisation names no bands (a foreign HF processor's mean/std):
the record is named after the file's bands (R, G, B for 3 values) and restricted/reordered with the kernels, as
`convert --bands` does since 52ee7d9; it was dropped and ImageNet statistics used instead."""

from __future__ import annotations

import pytest
import torch

from geodino.backbones import load_backbone

pytest.importorskip("transformers")

from tests.models.test_export_review_convert_record import _foreign_hf


def test_unnamed_rgb_record_is_kept_when_bands_reorder_the_kernels(tmp_path):
    torch.manual_seed(0)
    _foreign_hf(tmp_path / "hf", 3)  # mean 0.1, 0.2, 0.3; std 0.5, 0.6, 0.7; rescale 1e-4
    fb = load_backbone(str(tmp_path / "hf"), bands=["B", "G", "R"], device="cpu")
    rec = fb.normalization
    assert rec is not None and rec["bands"] == ["B", "G", "R"] and rec["scale"] == 1e-4
    torch.testing.assert_close(torch.tensor(rec["mean"]), torch.tensor([0.3, 0.2, 0.1]))
    torch.testing.assert_close(torch.tensor(rec["std"]), torch.tensor([0.7, 0.6, 0.5]))
    torch.testing.assert_close(fb.mean.flatten(), torch.tensor([0.3, 0.2, 0.1]))
    assert fb.norm_source.startswith("recorded in")


def test_unnamed_rgb_record_subset(tmp_path):
    torch.manual_seed(0)
    _foreign_hf(tmp_path / "hf", 3)
    fb = load_backbone(str(tmp_path / "hf"), bands=["R", "B"], device="cpu")
    assert fb.normalization is not None and fb.normalization["bands"] == ["R", "B"]
    torch.testing.assert_close(torch.tensor(fb.normalization["mean"]), torch.tensor([0.1, 0.3]))
