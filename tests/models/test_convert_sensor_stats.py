"""`convert --bands ... --sensor S` keeps the recorded statistics of the bands the file has (what the model was
trained with) and takes only the new bands' from the sensor; it replaced them all by the sensor's."""

from __future__ import annotations

import json

import pytest
import torch

from geodino.models import build_model
from geodino.models.checkpoints import read_backbone_weights, save_backbone
from geodino.models.checkpoints.convert import convert_checkpoint

S2 = {
    "sensor": "sentinel2_l2a",
    "bands": ["B02", "B03", "B04", "B08"],
    "scale": 1e-4,
    "mean": [0.05, 0.08, 0.07, 0.3],
    "std": [0.02, 0.03, 0.04, 0.1],
}


def tiny(c: int):
    torch.manual_seed(0)
    return build_model("vit_tiny", patch_size=8, in_chans=c, depth=1)


def test_new_bands_take_the_sensor_statistics_recorded_bands_keep_theirs(tmp_path):
    from geodino.data.sensors import get_sensor

    s2 = get_sensor("sentinel2_l2a").to_dict()
    b11 = s2["bands"].index("B11")
    src = save_backbone(tiny(4), tmp_path / "s2.safetensors", normalization=S2)
    with pytest.warns(UserWarning, match="B11"):
        out = convert_checkpoint(
            src, tmp_path / "o.safetensors", bands=["B08", "B11", "B02"], sensor="sentinel2_l2a", fill="mean"
        )
    rec = read_backbone_weights(out).normalization
    assert rec["bands"] == ["B08", "B11", "B02"] and rec["sensor"] == "sentinel2_l2a"
    assert rec["mean"] == pytest.approx([0.3, s2["mean"][b11], 0.05])  # was the sensor's for B08 and B02 too
    assert rec["std"] == pytest.approx([0.1, s2["std"][b11], 0.02])
    assert rec["scale"] == pytest.approx(1e-4) and rec["offset"] == 0.0
    assert "B08, B02" in rec["origin"] and "sensor sentinel2_l2a (B11)" in rec["origin"]


def test_a_recorded_scale_stays_with_its_bands(tmp_path):
    """An R,G,B record in 1/255 units plus NAIP's N: per-band scale where the two differ, and the HF processor
    standardises each band as its source says (hand-computed DN-unit mean/std)."""
    from geodino.data.sensors import get_sensor

    naip = get_sensor("naip").to_dict()
    rgb = {"bands": ["R", "G", "B"], "scale": 1 / 255, "mean": [0.4, 0.4, 0.3], "std": [0.2, 0.15, 0.14]}
    src = save_backbone(tiny(3), tmp_path / "rgb.pth", normalization=rgb)
    with pytest.warns(UserWarning, match=r"1 band \(N\) match(es)? no band of checkpoint"):
        hf = convert_checkpoint(src, tmp_path / "hf", dst_layout="hf", bands=["R", "G", "B", "N"], sensor="naip")
    rec = read_backbone_weights(hf).normalization
    assert rec["mean"] == pytest.approx([0.4, 0.4, 0.3, naip["mean"][3]])
    assert rec["std"] == pytest.approx([0.2, 0.15, 0.14, naip["std"][3]])
    pp = json.loads((hf / "preprocessor_config.json").read_text())
    assert pp["image_mean"][:3] == pytest.approx([0.4, 0.4, 0.3]) and pp["rescale_factor"] == pytest.approx(1 / 255)
    # a sensor with another scale: the merged record carries one per band
    rgb_dn = dict(rgb, scale=1e-3)
    src2 = save_backbone(tiny(3), tmp_path / "rgb2.safetensors", normalization=rgb_dn)
    with pytest.warns(UserWarning, match=r"1 band \(N\) match(es)? no band of checkpoint"):
        out = convert_checkpoint(src2, tmp_path / "o2.safetensors", bands=["R", "G", "B", "N"], sensor="naip")
    rec = read_backbone_weights(out).normalization
    assert rec["scale"] == pytest.approx([1e-3, 1e-3, 1e-3, naip["scale"]])
    pp = json.loads(
        (convert_checkpoint(out, tmp_path / "hf2", dst_layout="hf") / "preprocessor_config.json").read_text()
    )
    assert pp["rescale_factor"] == 1.0  # folded: (x * s - m) / sd == (x - m / s) / (sd / s)
    assert pp["image_mean"] == pytest.approx([400.0, 400.0, 300.0, naip["mean"][3] / naip["scale"]])
    assert pp["image_std"] == pytest.approx([200.0, 150.0, 140.0, naip["std"][3] / naip["scale"]])
