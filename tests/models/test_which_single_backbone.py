"""`which` given for a file holding one backbone is refused in one line wherever a checkpoint is read (`geodino
info`, `load_backbone` specs, `load_model`), as `geodino convert --which` refuses it; a training checkpoint still
takes it."""

from __future__ import annotations

import pytest
import torch

import geodino.cli
from geodino.backbones import load_backbone
from geodino.errors import ConfigError
from geodino.models import build_model
from geodino.models.checkpoints import load_model, save_backbone

ONE = r"--which student \(which='student' in Python and backbone specs\): .* holds one backbone.*drop --which"


pytestmark = pytest.mark.usefixtures("only_model_commands")


@pytest.fixture
def one(tmp_path):
    return save_backbone(build_model("vit_tiny", patch_size=8, depth=1), tmp_path / "bb.safetensors")


def test_info_refuses_which_for_one_backbone(capsys, one):
    assert geodino.cli.main(["info", f"{one}?which=student"]) == 2
    out, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "holds one backbone" in lines[0] and "drop --which" in lines[0], err
    assert out == ""
    assert geodino.cli.main(["info", str(one)]) == 0  # without which: described
    capsys.readouterr()


def test_info_takes_which_for_a_training_checkpoint(capsys, ssl_ckpt):
    path, _, _ = ssl_ckpt
    assert geodino.cli.main(["info", f"{path}?which=student"]) == 0
    assert "every key and shape fits" in capsys.readouterr().out


# a checkpoint or folder without a normalisation record is this test's input (that warning is
# test_normalization_records' subject)
@pytest.mark.filterwarnings("ignore:.*records no input normalisation:UserWarning")
def test_load_backbone_spec_refuses_which_for_one_backbone(one, ssl_ckpt):
    with pytest.raises(ConfigError, match=ONE):
        load_backbone(f"{one}?which=student")
    with pytest.raises(ConfigError, match="holds one backbone"):
        load_backbone(f"{one}?which=teacher")  # the default named on a file without a choice: refused too
    path, _, s = ssl_ckpt
    fb = load_backbone(f"{path}?which=student")
    assert torch.equal(fb.model.cls_token, s.cls_token)
    # the default's fingerprint is unchanged (feature caches keyed on it stay valid)
    assert load_backbone(str(path))._fp_source["which"] == "teacher"


def test_load_model_refuses_which_for_one_backbone(one, tmp_path):
    with pytest.raises(ConfigError, match=ONE):
        load_model(one, which="student")
    hf = save_backbone(build_model("vit_tiny", patch_size=8, depth=1), tmp_path / "hf", layout="hf")
    with pytest.raises(ConfigError, match="holds one backbone"):
        load_model(hf, which="teacher")
    assert load_model(one).in_chans == 3
