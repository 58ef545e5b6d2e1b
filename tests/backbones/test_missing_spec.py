"""A backbone spec naming no file says what to pass instead: another tool's prefix (timm's `local-dir:`/`hf-hub:`),
a Hugging Face hub id, an architecture name without `arch:`, a mistyped file name (what its folder holds). It said
only "backbone checkpoint X not found"."""

from __future__ import annotations

import pytest

from geodino.backbones import load_backbone
from geodino.errors import CheckpointError


@pytest.mark.parametrize(
    ("spec", "says"),
    [
        (
            "local-dir:{d}/timm_bb",
            r"local-dir: is timm's prefix for a local folder; pass the folder itself \({d}/timm_bb\)$",
        ),
        ("hf-hub:timm/vit_small_patch16_dinov3", r"geodino reads local files only: download it \(hf download timm/vit"),
        ("hf:facebook/dinov3-x", r"hf: is not a geodino spec; .*hf download facebook/dinov3-x --local-dir DIR\)"),
        ("facebook/dinov3-vits16", r"if facebook/dinov3-vits16 is a Hugging Face hub id, .*hf download facebook/"),
        ("vit_smal", r"\(did you mean arch:vit_small, a random backbone\? timm:NAME for a timm model\)$"),
        ("{d}/b.safetensors", r"\(arch:NAME .*\); {d} holds a.pth, b.pth$"),
        ("gone/b.pth", r"\(arch:NAME for a random backbone, timm:NAME for a timm model\)$"),  # a file, not a hub id
    ],
)
def test_a_missing_spec_says_what_to_pass(tmp_path, monkeypatch, spec, says):
    for name in ("a.pth", "a.heads.pth", "b.pth"):
        (tmp_path / name).write_bytes(b"x")
    monkeypatch.chdir(tmp_path)  # hub ids are relative paths: their first part must not exist here
    d = str(tmp_path)
    with pytest.raises(
        CheckpointError, match=rf"^backbone checkpoint {spec.format(d=d)} not found.*" + says.format(d=d)
    ):
        load_backbone(spec.format(d=d))
