"""`geodino info`'s dn_scale row says the DN step geodino applies: a bare mean/std (a foreign timm
pretrained_cfg: no sensor, scale 1) read "reflectance = DN * 1 + 0" while preprocess divided int16 by 10000."""

from __future__ import annotations

import json
import warnings

import pytest
import torch

import geodino.cli
from geodino.backbones import load_backbone
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone

pytestmark = pytest.mark.usefixtures("only_model_commands")

MEAN, STD = [0.1, 0.2, 0.3, 0.4], [0.5, 0.5, 0.5, 0.5]


def dn_row(capsys, path) -> str:
    assert geodino.cli.main(["info", str(path)]) == 0
    rows = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("dn_scale ")]
    assert len(rows) == 1
    return rows[0]


def test_a_bare_mean_std_says_the_dtype_rule_that_preprocess_applies(tmp_path, capsys):
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1)
    path = save_backbone(model, tmp_path / "tm", layout="timm", normalization={"mean": MEAN, "std": STD})
    f = path / "config.json"  # as timm writes it: pretrained_cfg mean/std only
    f.write_text(json.dumps({k: v for k, v in json.loads(f.read_text()).items() if k != "geodino_normalization"}))
    row = dn_row(capsys, path)
    assert (
        "by dtype" in row
        and "int16 / 10000" in row
        and "other integer types refused" in row
        and "DN * 1 + 0" not in row
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        fb = load_backbone(path)
    got = fb.preprocess(torch.full((1, 4, 8, 8), 5000, dtype=torch.int16))[0, :, 0, 0]
    want = torch.tensor([(0.5 - m) / s for m, s in zip(MEAN, STD, strict=True)])
    assert torch.allclose(got, want, atol=1e-5)  # what the row says: 5000 / 10000


def test_a_recorded_scale_is_shown(tmp_path, capsys):
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1)
    rec = {"mean": MEAN, "std": STD, "scale": 2.75e-5, "offset": -0.2, "sensor": "landsat8"}
    path = save_backbone(model, tmp_path / "t.safetensors", normalization=rec)
    assert "reflectance = DN * 2.75e-05 + -0.2" in dn_row(capsys, path)
