"""Detection probe keys: `cut_cover` (the window-merge fraction, fixed at 0.5 before) and a warning when
`box_score_threshold` lies below `score_threshold` (it had no effect, silently)."""

from __future__ import annotations

import warnings

import pytest
import torch
from torch import nn

from geodino.errors import ConfigError
from geodino.eval.detection import DetectionProbeConfig, predict_image

WHOLE = [20.0, 10.0, 44.0, 30.0]  # an object whole in window 0 (columns 0..64) of a 96 x 64 image
PART = [32.0, 10.0, 44.0, 34.0]  # window 1's (columns 32..96) box of its visible part, drawn 4 px too tall


class TwoWindows(nn.Module):
    """Window 0 sees the object whole (score 0.8); window 1 boxes its visible part touching its left edge (0.9),
    5/6 of which lies inside the whole box. Band 0 holds the pixel column, so the window is known."""

    def __init__(self) -> None:
        super().__init__()
        self.p = nn.Parameter(torch.zeros(1))

    def forward(self, images: list[torch.Tensor]) -> list[dict[str, torch.Tensor]]:
        out = []
        for im in images:
            c = int(im[0, 0, 0])
            box = torch.tensor([WHOLE]) if c == 0 else torch.tensor([PART]) - torch.tensor([c, 0, c, 0])
            out.append({"boxes": box, "scores": torch.tensor([0.8 if c == 0 else 0.9]), "labels": torch.ones(1).long()})
        return out


def _image() -> torch.Tensor:
    return torch.stack([torch.arange(96.0).expand(64, 96), torch.zeros(64, 96), torch.zeros(64, 96)])


def test_cut_cover_decides_whether_a_partial_box_merges():
    """5/6 of the partial box lies in the whole one: dropped at the default 0.5, kept at cut_cover 0.9 (its IoU
    with the whole box, 240/528, is below nms_iou, so NMS keeps both)."""
    merged = predict_image(TwoWindows(), _image(), DetectionProbeConfig(tile_size=64, tile_overlap=32))
    assert merged["boxes"].tolist() == [WHOLE]
    strict = DetectionProbeConfig(tile_size=64, tile_overlap=32, cut_cover=0.9)
    kept = predict_image(TwoWindows(), _image(), strict)
    assert sorted(kept["boxes"].tolist()) == sorted([WHOLE, PART])


@pytest.mark.parametrize("value", [0.0, 1.5])
def test_cut_cover_out_of_range_is_refused(value):
    with pytest.raises(ConfigError, match="cut_cover"):
        DetectionProbeConfig(cut_cover=value).validate()


def test_box_score_threshold_below_score_threshold_warns_naming_both():
    with pytest.warns(UserWarning) as caught:
        DetectionProbeConfig(score_threshold=0.05, box_score_threshold=0.0).validate()
    msg = str(caught[0].message)
    assert "box_score_threshold=0.0" in msg and "score_threshold=0.05" in msg and "\n" not in msg
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        DetectionProbeConfig().validate()  # the defaults (0.1 over 0.05) do not warn
        DetectionProbeConfig(score_threshold=0.1, box_score_threshold=0.1).validate()
