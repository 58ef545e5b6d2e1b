"""Pascal VOC xml coordinates: read as written (as torchgeo's DIOR reader and DeepForest's CSV of the same crowns),
and `voc_inclusive_pixels` scores voc_mAP50 with the VOC devkit's +1 widths (1-based inclusive pixels), as the
devkit and mmdetection's VOC metric do. Before, there was no way to get the devkit's IoU: an 11 px object (xml
1..11) found 2 px off has IoU 0.471 on continuous pixels but 81/161 = 0.503 in the devkit, a true positive there."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from geodino.eval.boxes import read_csv_boxes, read_voc
from geodino.eval.detection import DetectionProbeConfig, _evaluate

XML = """<annotation><filename>a.jpg</filename><size><width>32</width><height>32</height></size>
<object><name>vehicle</name><difficult>0</difficult>
<bndbox><xmin>1</xmin><ymin>1</ymin><xmax>11</xmax><ymax>11</ymax></bndbox></object></annotation>"""


def test_voc_xml_is_read_as_written_like_torchgeo_and_the_csv(tmp_path):
    from torchgeo.datasets.dior import parse_pascal_voc

    (tmp_path / "a.xml").write_text(XML)
    (tmp_path / "a.csv").write_text("image_path,xmin,ymin,xmax,ymax,label\na.jpg,1,1,11,11,vehicle\n")
    (ours,) = read_voc(tmp_path / "a.xml").values()
    assert ours.boxes.tolist() == [[1, 1, 11, 11]]
    assert parse_pascal_voc(tmp_path / "a.xml")["bboxes"] == [[1, 1, 11, 11]]  # torchgeo's DIOR reader
    assert read_csv_boxes(tmp_path / "a.csv")["a.jpg"].boxes.tolist() == ours.boxes.tolist()


class _One(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.w = nn.Parameter(torch.zeros(1))
        self.detections_per_img = 100

    def forward(self, images):
        return [
            {"boxes": torch.tensor([[3.0, 3, 13, 13]]), "scores": torch.tensor([0.9]), "labels": torch.zeros(1).long()}
        ]


def _devkit_iou(a, b) -> float:
    """VOCevaldet.m's overlap: inclusive integer pixels, +1 on every width and height."""
    iw = min(a[2], b[2]) - max(a[0], b[0]) + 1
    ih = min(a[3], b[3]) - max(a[1], b[1]) + 1
    ua = (a[2] - a[0] + 1) * (a[3] - a[1] + 1) + (b[2] - b[0] + 1) * (b[3] - b[1] + 1) - iw * ih
    return iw * ih / ua


@pytest.mark.parametrize("inclusive", [False, True])
def test_voc_inclusive_pixels_gives_the_devkit_overlap(tmp_path, inclusive):
    (tmp_path / "a.xml").write_text(XML)
    (truth,) = read_voc(tmp_path / "a.xml").values()
    assert _devkit_iou([1, 1, 11, 11], [3, 3, 13, 13]) == pytest.approx(81 / 161)  # >= 0.5: found
    sample = {"image": torch.zeros(3, 32, 32), "boxes": torch.from_numpy(truth.boxes), "labels": torch.zeros(1).long()}
    cfg = DetectionProbeConfig(detector="retinanet", tile_size=32, voc_inclusive_pixels=inclusive)
    out = _evaluate(_One(), [sample], cfg, ["vehicle"], lambda s, where: s)
    assert out["voc_mAP50"] == pytest.approx(1.0 if inclusive else 0.0)  # continuous IoU 64/136 = 0.47
    assert out["voc07_mAP50"] == pytest.approx(1.0 if inclusive else 0.0)
    assert out["mAP50"] == pytest.approx(0.0)  # COCO's metrics keep continuous pixels either way
