"""`geodino info` on a `convert --sensor` output named the sensor twice ("naip (R, G, B, N), sensor naip (convert
--sensor)"): the record's origin repeats its sensor. The line now names it once and keeps how it was set."""

from __future__ import annotations

import pytest
import torch

import geodino.cli
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone

pytestmark = pytest.mark.usefixtures("only_model_commands")


def info_line(capsys, path) -> str:
    assert geodino.cli.main(["info", str(path)]) == 0
    lines = [ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("normalization ")]
    assert len(lines) == 1
    return lines[0]


@pytest.mark.parametrize("to", ["hf", "official"])
def test_a_converted_sensor_is_named_once(tmp_path, capsys, to):
    torch.manual_seed(0)
    src = save_backbone(build_model("vit_tiny", patch_size=8, in_chans=4, depth=1), tmp_path / "t.safetensors")
    out = tmp_path / ("hf" if to == "hf" else "o.safetensors")
    assert geodino.cli.main(["convert", str(src), str(out), "--to", to, "--sensor", "naip"]) == 0
    capsys.readouterr()
    line = info_line(capsys, out)
    assert line.count("naip") == 1, line
    assert "naip (R, G, B, N), convert --sensor (read from " in line, line


def test_another_origin_is_kept(tmp_path, capsys):
    torch.manual_seed(0)
    rec = {"mean": [0.1] * 4, "std": [0.5] * 4, "sensor": "naip", "bands": ["R", "G", "B", "N"], "origin": "my data"}
    out = save_backbone(
        build_model("vit_tiny", patch_size=8, in_chans=4, depth=1), tmp_path / "t.pth", normalization=rec
    )
    assert "naip (R, G, B, N), my data (read from " in info_line(capsys, out)
