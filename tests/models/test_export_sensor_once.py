"""`geodino export` of a run whose data config names a sensor records it (as convert --sensor does since
c9624ad), and `geodino info` on the export names that sensor once: it said "naip (R, G, B), pretraining data
(sensor naip)". A run whose data names no sensor still warns in one line and records nothing."""

from __future__ import annotations

import pytest
import torch

import geodino.cli
from geodino.models.checkpoints import read_backbone_weights
from geodino.train import checkpointing as ck
from tests.train.test_checkpointing import train

pytestmark = pytest.mark.usefixtures("only_model_commands")


@pytest.fixture(scope="module")
def ckpt(tmp_path_factory):
    """A tiny training checkpoint (3-band backbone) whose config is replaced per test."""
    tmp = tmp_path_factory.mktemp("run")
    _, cb = train(tmp, max_steps=1, every=1)
    return ck.load_file(cb.last_path), tmp


def with_data(ckpt, tmp_path, data) -> str:
    obj, _ = ckpt
    obj = {**obj, "geodino": {**obj["geodino"], "config": {"data": data}}}
    path = tmp_path / "last.ckpt"
    torch.save(obj, path)
    return str(path)


def test_the_run_sensor_is_recorded_and_named_once(ckpt, tmp_path, capsys):
    src = {"type": "raster", "paths": ["x"], "sensor": "naip", "bands": ["R", "G", "B"]}
    path = with_data(ckpt, tmp_path, {"sources": [src]})
    assert geodino.cli.main(["export", path, str(tmp_path / "exp" / "teacher")]) == 0
    rec = read_backbone_weights(tmp_path / "exp" / "teacher.safetensors").normalization
    assert rec["sensor"] == "naip" and rec["bands"] == ["R", "G", "B"]
    capsys.readouterr()
    assert geodino.cli.main(["info", str(tmp_path / "exp" / "teacher.pth")]) == 0
    line = next(ln for ln in capsys.readouterr().out.splitlines() if ln.startswith("normalization "))
    assert line.count("naip") == 1, line
    assert "naip (R, G, B), pretraining data (read from " in line, line


def test_a_run_without_a_sensor_warns_once(ckpt, tmp_path, capsys):
    path = with_data(ckpt, tmp_path, {"sources": [{"type": "raster", "paths": ["x"]}]})
    with pytest.warns(UserWarning, match=r"records no input normalisation \(data.sources\[0\] names no sensor\)"):
        assert geodino.cli.main(["export", path, str(tmp_path / "exp" / "teacher")]) == 0
    assert read_backbone_weights(tmp_path / "exp" / "teacher.pth").normalization is None
