"""A backbone output named `X.heads.pth` (or an export named `X.heads`, which writes X.heads.pth) is refused in one
line before anything is read or written: that is the sidecar name every reader of `X.pth` opens for its build
kwargs and normalisation. `geodino convert FILE b.heads.pth` beside an official `b.pth` wrote a backbone there
(read as b.pth's sidecar), and with `--overwrite` it replaced an export's record."""

from __future__ import annotations

import pytest
import torch

from geodino import cli
from geodino.errors import ConfigError
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from geodino.models.checkpoints.convert import convert_checkpoint


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    torch.manual_seed(0)
    return save_backbone(build_model("vit_tiny", patch_size=8, depth=1), tmp_path_factory.mktemp("s") / "bb.pth")


@pytest.mark.parametrize("layout", ["official", "timm"])
def test_convert_onto_a_sidecar_name_is_refused(src, tmp_path, layout, monkeypatch):
    import geodino.models.checkpoints.convert as conv

    def unread(*_a, **_k):
        raise AssertionError("the input was read before the output name was checked")

    monkeypatch.setattr(conv, "read_backbone_weights", unread)
    with pytest.raises(
        ConfigError, match=r"b\.heads\.pth takes the name of the heads sidecar .* beside b\.pth.*b_backbone\.pth"
    ):
        convert_checkpoint(src, tmp_path / "b.heads.pth", dst_layout=layout)
    assert list(tmp_path.iterdir()) == []


def test_save_backbone_onto_a_sidecar_name_is_refused(tmp_path):
    with pytest.raises(ConfigError, match="heads sidecar"):
        save_backbone(build_model("vit_tiny", patch_size=8, depth=1), tmp_path / "b.heads.pth")
    assert list(tmp_path.iterdir()) == []


def test_other_heads_names_still_convert(src, tmp_path):
    """Only X.heads.pth collides: b.heads.pt's sidecar is b.heads.heads.pth, and an HF folder has none."""
    assert convert_checkpoint(src, tmp_path / "b.heads.pt").exists()
    assert (tmp_path / "b.heads.heads.pth").exists()


@pytest.mark.parametrize("out", ["e/b.heads", "e/b.heads.pth", "e/b.heads.safetensors"])
def test_export_onto_a_sidecar_name_is_one_line_exit_2(tmp_path, capsys, out, monkeypatch):
    monkeypatch.chdir(tmp_path)
    ckpt = tmp_path / "run.ckpt"
    ckpt.write_bytes(b"never read")
    assert cli.main(["export", str(ckpt), out]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and f"output {out}: a backbone named b.heads.pth" in err, err
    assert "e/b_backbone.pth" in err
    assert not (tmp_path / "e").exists()
