"""`geodino export` on something that already is a backbone (an export, a timm or HF folder from `convert`, a timm
file, an official release) says so in one line and names `geodino convert`: it said "not written by geodino
pretrain" for files and, for a timm or HF folder, "has no meta.pt; pass a checkpoint file or a sharded folder"."""

from __future__ import annotations

import pytest
import torch

from geodino import cli
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from tests.helpers import EXPORT_RECORD


@pytest.fixture(scope="module")
def backbones(tmp_path_factory):
    root = tmp_path_factory.mktemp("bb")
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1)
    return {
        "official": save_backbone(model, root / "bb.pth"),  # no record: the read's warning stays out of the line
        "timm": save_backbone(model, root / "timm_dir", layout="timm", normalization=EXPORT_RECORD),
        "hf": save_backbone(model, root / "hf_dir", layout="hf", normalization=EXPORT_RECORD),
    }


@pytest.mark.parametrize("layout", ["official", "timm", "hf"])
def test_export_of_a_backbone_names_convert(backbones, layout, tmp_path, capsys):
    src = backbones[layout]
    out = tmp_path / "e" / "x.pth"
    assert cli.main(["export", str(src), str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0, err
    assert f"{src} is already a backbone ({layout} layout), not a training checkpoint" in err
    assert f"geodino convert {src} {out}" in err
    assert not out.exists()


def test_other_files_keep_their_line(tmp_path, capsys):
    sd = tmp_path / "sd.pt"
    torch.save({"a": torch.zeros(3)}, sd)
    assert cli.main(["export", str(sd), str(tmp_path / "x.pth")]) == 2
    assert "was not written by geodino pretrain" in capsys.readouterr().err
