"""An image smaller than crop_size: its training tile and its inference window give the backbone the same
normalised input. Inference predicts such an image whole, padded to the patch grid with 0 after normalisation
(the band mean); training tiles used to be padded with reflectance 0 before it (-mean/std once normalised)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

from geodino.eval import dense
from geodino.eval.canopy import CanopyProbeConfig, run_canopy
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
from tests.eval.dense_backbone import tiny_backbone

SIZE, CROP = 20, 32  # 20 px: 3 patches of 8 px at inference (24 px), one 32 px training tile


def _record_inputs(monkeypatch: pytest.MonkeyPatch, bb: Any) -> list[torch.Tensor]:
    """Every normalised batch the backbone is given (what `extract` passes to `features`)."""
    seen: list[torch.Tensor] = []
    features = bb.features

    def recording(x: torch.Tensor, *args: Any, **kwargs: Any):
        seen.append(x.detach().cpu().clone())
        return features(x, *args, **kwargs)

    monkeypatch.setattr(bb, "features", recording)
    return seen


def _image() -> torch.Tensor:
    return torch.rand(3, SIZE, SIZE, generator=torch.Generator().manual_seed(0)) * 0.3


def _same_padded_input(seen: list[torch.Tensor]) -> None:
    train = [x for x in seen if x.shape[-1] == CROP]
    infer = [x for x in seen if x.shape[-1] == 24]
    assert train and infer, [tuple(x.shape) for x in seen]
    t, i = train[0][0], infer[-1][0]
    assert torch.equal(t[:, :SIZE, :SIZE], i[:, :SIZE, :SIZE])  # the image itself, normalised
    assert torch.equal(i[:, SIZE:, :], torch.zeros_like(i[:, SIZE:, :]))  # inference: the mean
    assert torch.equal(t[:, SIZE:, :], torch.zeros_like(t[:, SIZE:, :]))  # training tile: the mean too
    assert torch.equal(t[:, :, SIZE:], torch.zeros_like(t[:, :, SIZE:]))
    assert torch.equal(t[:, :24, :24], i)


def test_segmentation_pads_a_small_training_image_as_inference_does(tmp_path, monkeypatch):
    bb = tiny_backbone()
    seen = _record_inputs(monkeypatch, bb)
    mask = (torch.arange(SIZE)[None, :] >= SIZE // 2).long().expand(SIZE, SIZE)
    sample = {"image": _image(), "mask": mask, "name": "small"}
    cfg = SegmentationProbeConfig(
        num_classes=2, crop_size=CROP, stride=CROP, epochs=1, min_steps=1, batch_size=2, plots=0
    )
    run_segmentation(bb, cfg, tmp_path / "out", train_data=[sample], val_data=[sample])
    _same_padded_input(seen)


@pytest.mark.filterwarnings("ignore:canopy probe")
# the training image is the validation image on purpose: scored whole, as a small image is predicted
@pytest.mark.filterwarnings("ignore:canopy validation raster .* overlaps training raster:UserWarning")
def test_canopy_pads_a_small_training_image_as_inference_does(tmp_path, monkeypatch):
    from tests.eval.test_canopy import write_chm, write_image

    bb = tiny_backbone()
    seen = _record_inputs(monkeypatch, bb)
    write_image(tmp_path / "a.tif", size=SIZE)  # 20 px of 0.5 m, inside the CHM's 40 m
    write_chm(tmp_path / "a_CHM.tif")
    files = {"images": [str(tmp_path / "a.tif")], "chms": [str(tmp_path / "a_CHM.tif")]}
    cfg = CanopyProbeConfig(
        train_images=files["images"],
        train_chms=files["chms"],
        val_images=files["images"],  # scored whole, as a small image is predicted
        val_chms=files["chms"],
        head="linear",
        crop_size=CROP,
        stride=CROP,
        epochs=1,
        min_steps=1,
        batch_size=2,
        n_bins=8,
        block_size=4,
        block_border=1,
    )
    run_canopy(bb, cfg, tmp_path / "out")
    _same_padded_input(seen)


def test_pad_fill_normalises_to_zero_for_a_backbone_without_mean_attribute():
    class Affine:
        def normalize(self, x: torch.Tensor) -> torch.Tensor:
            return (x - torch.tensor([0.1, 0.2]).view(-1, 1, 1)) / torch.tensor([0.05, 0.5]).view(-1, 1, 1)

    fill = dense.pad_fill(Affine(), 2)
    tile = dense.crop_pad(torch.full((2, 4, 4), 0.3), 0, 0, 8, fill)
    assert tile.shape == (2, 8, 8) and torch.equal(tile[:, :4, :4], torch.full((2, 4, 4), 0.3))
    assert Affine().normalize(tile)[:, 4:, :].abs().max() < 1e-6
