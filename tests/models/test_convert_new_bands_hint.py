"""`convert --bands` with bands the record lacks (the torchgeo route's `timm6` folder) drops the record; its warning
names the step that keeps one, `--sensor NAME` (it offered only load-time sensors), and that step records the
file's statistics for its own bands and the sensor's for the new ones."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from geodino.models.checkpoints.convert import convert_checkpoint

REC = {"sensor": "demo4", "bands": ["blue", "green", "red", "nir"], "scale": 1e-4}
REC |= {"mean": [0.05, 0.08, 0.07, 0.3], "std": [0.02, 0.03, 0.04, 0.1]}
BANDS = ["blue", "green", "red", "nir", "swir16"]


@pytest.fixture(scope="module")
def export(tmp_path_factory):
    torch.manual_seed(0)
    return save_backbone(
        build_model("vit_tiny", patch_size=8, in_chans=4, depth=1),
        tmp_path_factory.mktemp("b") / "b.pth",
        normalization=REC,
    )


def test_the_warning_names_the_sensor_option(export, tmp_path):
    with (
        pytest.warns(UserWarning, match=r"not swir16: .*t5 records none; convert with --sensor NAME \(sensor=NAME"),
        pytest.warns(UserWarning, match=r"1 band \(swir16\) matches no band of checkpoint .*mean kernel"),
    ):
        convert_checkpoint(export, tmp_path / "t5", dst_layout="timm", bands=BANDS, fill="mean")
    cfg = json.loads((tmp_path / "t5" / "config.json").read_text())
    assert cfg["pretrained_cfg"]["mean"] == [0.0] * 5 and cfg.get("geodino_normalization") is None


def test_with_the_sensor_the_record_keeps_the_recorded_bands(export, tmp_path):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        convert_checkpoint(export, tmp_path / "t5", dst_layout="timm", bands=BANDS, fill="mean", sensor="sentinel2_l2a")
    assert not [w for w in caught if "records none" in str(w.message)]
    rec = json.loads((tmp_path / "t5" / "config.json").read_text())["geodino_normalization"]
    assert rec["bands"] == BANDS and rec["mean"][:4] == REC["mean"] and rec["std"][:4] == REC["std"]
    assert rec["mean"][4] != 0.0 and rec["scale"] == 1e-4
