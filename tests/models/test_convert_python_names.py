"""`convert_checkpoint` called from Python names the keyword its caller passed (`dst_layout=`, `src_layout=`,
`src_bands=`) beside the `geodino convert` flag, in one line, and writes nothing."""

from __future__ import annotations

import pytest

from geodino.errors import CheckpointError, ConfigError
from geodino.models import build_model
from geodino.models.checkpoints import convert_checkpoint, save_backbone


@pytest.fixture(scope="module")
def src(tmp_path_factory):
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1)
    return save_backbone(model, tmp_path_factory.mktemp("bb") / "bb.safetensors")


def test_layout_refusals_name_the_keywords(src, tmp_path):
    out = tmp_path / "o.safetensors"
    with pytest.raises(ConfigError, match=r"^--to 'onnx' \(dst_layout= in Python\) is not a layout"):
        convert_checkpoint(src, out, dst_layout="onnx")
    with pytest.raises(ConfigError, match=r"^--from 'x' \(src_layout= in Python\) is not a layout"):
        convert_checkpoint(src, out, src_layout="x")
    with pytest.raises(CheckpointError, match=r"pass --from official \(src_layout='official' in Python\), or leave"):
        convert_checkpoint(src, out, src_layout="hf")
    with pytest.raises(ConfigError, match=r"--to hf \(dst_layout='hf' in Python\) writes a Hugging Face folder"):
        convert_checkpoint(src, out, dst_layout="hf")
    assert not out.exists()


def test_src_bands_refusal_names_the_keyword(src, tmp_path):
    out = tmp_path / "o.safetensors"
    with pytest.raises(ConfigError, match=r"name its bands \(--src-bands, 4 names; src_bands= in Python\)") as err:
        convert_checkpoint(src, out, src_bands=["R", "G", "B"])
    assert "\n" not in str(err.value)
    assert not out.exists()
