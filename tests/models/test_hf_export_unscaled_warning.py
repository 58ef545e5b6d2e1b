"""An HF export of a >3-band backbone without a normalisation record says so in one line: its processor passes
pixel values through (rescale_factor 1, do_normalize false) while geodino divides integer input by dtype (uint16 /
10000). No rescale_factor fixes it (HF applies it to float reflectance too), so the folder is written as before."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import geodino.cli
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone

pytestmark = pytest.mark.usefixtures("only_model_commands")


def tiny(c: int):
    torch.manual_seed(0)
    return build_model("vit_tiny", patch_size=8, in_chans=c, depth=1)


def test_convert_to_hf_without_a_record_warns_in_one_line(tmp_path):
    src = save_backbone(tiny(4), tmp_path / "t4.safetensors")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        assert geodino.cli.main(["convert", str(src), str(tmp_path / "hf"), "--to", "hf"]) == 0
    said = [str(w.message) for w in caught]
    assert len(said) == 1 and "\n" not in said[0], said
    assert "records no input normalisation" in said[0] and "uint16 / 10000" in said[0] and "--sensor" in said[0]
    pp = json.loads((tmp_path / "hf" / "preprocessor_config.json").read_text())
    assert pp["rescale_factor"] == 1.0 and pp["do_normalize"] is False  # unchanged: no factor fits every dtype


def test_no_warning_with_a_record_or_three_bands(tmp_path):
    rec = {"sensor": "naip", "bands": ["R", "G", "B", "N"], "mean": [0.3] * 4, "std": [0.2] * 4, "scale": 1 / 255}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        save_backbone(tiny(4), tmp_path / "rec", layout="hf", normalization=rec)
        save_backbone(tiny(3), tmp_path / "rgb", layout="hf")
    with pytest.warns(UserWarning, match="4 bands: its processor passes pixel values through unchanged"):
        save_backbone(tiny(4), tmp_path / "bare", layout="hf")
