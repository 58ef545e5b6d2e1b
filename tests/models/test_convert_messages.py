"""Messages of `geodino convert` and the band adaptation name the interface the caller uses, `--which` chooses by
name (not substring) and is refused where there is nothing to choose, and `--expect-arch` says in one line what
the weights are."""

from __future__ import annotations

import pytest
import torch

import geodino.cli
from geodino.errors import CheckpointError, ConfigError
from geodino.models import build_model
from geodino.models.checkpoints import read_backbone_weights, resolve_bands, save_backbone

pytestmark = pytest.mark.usefixtures("only_model_commands")


def err_line(capsys, *argv) -> str:
    code = geodino.cli.main([str(a) for a in argv])
    _, err = capsys.readouterr()
    lines = err.strip().splitlines()
    assert code == 2 and len(lines) == 1, err
    return lines[0]


def test_which_matches_a_name_or_leading_part_never_a_substring(ssl_ckpt):
    path, t, s = ssl_ckpt
    assert torch.equal(read_backbone_weights(path).state["cls_token"], t.cls_token)
    for which in ("student", "arch.student", "arch.student.backbone"):
        assert torch.equal(read_backbone_weights(path, which=which).state["cls_token"], s.cls_token)
    with pytest.raises(CheckpointError, match=r"--which e \(which='e' in Python\) names none of them"):
        read_backbone_weights(path, which="e")  # picked the teacher ('e' in 'arch.teacher.backbone.')
    with pytest.raises(CheckpointError, match=r"--which arch .* matches several backbones"):
        read_backbone_weights(path, which="arch")
    with pytest.raises(CheckpointError, match=r"--which stud .*names none of them"):
        read_backbone_weights(path, which="stud")


def test_which_on_a_file_holding_one_backbone_is_refused(capsys, tmp_path, ssl_ckpt):
    src = save_backbone(build_model("vit_tiny", patch_size=8, depth=1), tmp_path / "bb.safetensors")
    line = err_line(capsys, "convert", src, tmp_path / "o.pth", "--which", "student")
    assert "--which student" in line and "holds one backbone" in line and "drop --which" in line
    assert not (tmp_path / "o.pth").exists()
    hf = save_backbone(build_model("vit_tiny", patch_size=8, depth=1), tmp_path / "hf", layout="hf")
    assert "holds one backbone" in err_line(capsys, "convert", hf, tmp_path / "o2.pth", "--which", "teacher")
    # a checkpoint with both: chosen, converted
    path, _, s = ssl_ckpt
    assert geodino.cli.main(["convert", str(path), str(tmp_path / "s.pth"), "--which", "student"]) == 0
    assert torch.equal(torch.load(tmp_path / "s.pth", weights_only=True)["cls_token"], s.cls_token)


def test_expect_arch_says_what_the_weights_are(capsys, tmp_path):
    src = save_backbone(build_model("vit_tiny", patch_size=8, depth=2), tmp_path / "t.safetensors")
    line = err_line(capsys, "convert", src, tmp_path / "o.pth", "--expect-arch", "vit_large")
    assert "holds a ViT (dim 192, depth 2), not vit_large (dim 1024, depth 24)" in line
    assert "shape mismatch" not in line
    full = save_backbone(build_model("vit_tiny", patch_size=8), tmp_path / "full.safetensors")
    line = err_line(capsys, "convert", full, tmp_path / "o.pth", "--expect-arch", "vit_small")
    assert "holds vit_tiny (dim 192, depth 12), not vit_small (dim 384, depth 12)" in line


def test_band_refusal_names_the_python_and_the_cli_forms(tmp_path):
    state = build_model("vit_tiny", patch_size=8, depth=1).state_dict()
    with pytest.raises(ConfigError) as info:
        resolve_bands(state, ["R", "G", "B", "foo"], fill=None, source="m.pth")
    msg = str(info.value)
    assert "1 requested band (foo) matches no band of checkpoint m.pth (R, G, B)" in msg
    assert "fill='mean' / fill='zeros' in Python" in msg and "--fill mean / --fill zeros on the command line" in msg
    assert "of --bands" not in msg
    with pytest.raises(ConfigError, match=r"name their sensor .*\(sensor='sentinel2_l2a' in Python, --sensor on the"):
        resolve_bands(state, ["foo", "bar"], fill=None, source="m.pth")  # nothing matches: maybe another sensor's


def test_to_hf_with_a_file_suffix_is_refused(capsys, tmp_path):
    """`--to hf` writes a folder: `o.pth --to hf` made a folder named o.pth, silently."""
    src = save_backbone(build_model("vit_tiny", patch_size=8, depth=1), tmp_path / "bb.safetensors")
    for name in ("o.pth", "o.safetensors"):
        line = err_line(capsys, "convert", src, tmp_path / name, "--to", "hf")
        assert "--to hf (dst_layout='hf' in Python) writes a Hugging Face folder" in line, line
        assert f"e.g. {tmp_path / 'o'}" in line, line
        assert not (tmp_path / name).exists()
