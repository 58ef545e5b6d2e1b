"""`geodino info` names where a foreign folder's normalisation was read once: an HF folder without geodino's
record said "preprocessor_config.json (read from hf/preprocessor_config.json)", a timm folder "timm pretrained_cfg
(read from tm/config.json (pretrained_cfg))"."""

from __future__ import annotations

import json

import pytest
import torch

import geodino.cli
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone

pytestmark = pytest.mark.usefixtures("only_model_commands")

REC = {"mean": [0.1, 0.2, 0.3, 0.4], "std": [0.5, 0.5, 0.5, 0.5], "scale": 1e-4, "sensor": "demo"}


def foreign(tmp_path, layout: str, edit=None):
    """A folder as another tool writes it: geodino's own record key removed."""
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1)
    out = save_backbone(model, tmp_path / layout, layout=layout, normalization=REC)
    f = out / ("preprocessor_config.json" if layout == "hf" else "config.json")
    cfg = json.loads(f.read_text())
    cfg.pop("geodino_normalization")
    (edit or (lambda c: None))(cfg)
    f.write_text(json.dumps(cfg))
    return out


def info_line(capsys, path) -> str:
    assert geodino.cli.main(["info", str(path)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("normalization ")]
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize(
    ("layout", "edit", "named", "kept"),
    [
        ("hf", None, "preprocessor_config.json", ""),
        ("hf", lambda c: c.update(do_normalize=False), "preprocessor_config.json", "do_normalize false"),
        ("timm", None, "pretrained_cfg", ""),
    ],
)
def test_the_origin_is_named_once(tmp_path, capsys, layout, edit, named, kept):
    line = info_line(capsys, foreign(tmp_path, layout, edit))
    assert line.count(named) == 1, line
    assert kept in line and "read from" in line


def test_a_geodino_origin_stays(tmp_path, capsys):
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1)
    out = save_backbone(model, tmp_path / "hf", layout="hf", normalization={**REC, "origin": "pretraining data"})
    line = info_line(capsys, out)
    assert "pretraining data (read from hf/preprocessor_config.json)" in line


def test_load_backbone_names_the_origin_once(tmp_path):
    """`FrozenBackbone.norm_source` read "recorded in hf/preprocessor_config.json: ..., preprocessor_config.json"."""
    from geodino.backbones import load_backbone

    source = load_backbone(foreign(tmp_path, "hf")).norm_source
    assert source.count("preprocessor_config.json") == 1 and source.startswith("recorded in hf/"), source
