"""`build_model` refuses a build option value the ViT cannot take in one ConfigError line (exit 2 from
`geodino info arch:vit_small?...`): names outside their choices were KeyError / ValueError tracebacks, a negative
ffn_ratio a torch error, and n_storage_tokens=-1 / drop_path_rate=2 built a model."""

from __future__ import annotations

import pytest

from geodino.errors import ConfigError
from geodino.models import build_model
from tests.test_bad_inputs import one_line_exit_2


@pytest.mark.parametrize(
    "option, expect",
    [
        ({"ffn_layer": "foo"}, "ffn_layer='foo' for vit_tiny: use one of mlp, swiglu"),
        ({"norm_layer": "foo"}, "norm_layer='foo' for vit_tiny: use one of layernorm, layernormbf16"),
        ({"pos_embed_rope_dtype": "fp8"}, "pos_embed_rope_dtype='fp8' for vit_tiny: use one of fp32"),
        ({"pos_embed_rope_normalize_coords": "avg"}, "use one of min, max, separate"),
        ({"rope_sampling": "per_step"}, "rope_sampling='per_step' for vit_tiny: use one of per_block, per_forward"),
        ({"ffn_ratio": -1}, "ffn_ratio=-1 for vit_tiny: must be above 0"),
        ({"n_storage_tokens": -1}, "n_storage_tokens=-1 for vit_tiny: must be at least 0"),
        ({"drop_path_rate": 2.0}, "drop_path_rate=2.0 for vit_tiny: must be in [0, 1)"),
    ],
)
def test_bad_values_are_one_line(option, expect):
    with pytest.raises(ConfigError) as exc:
        build_model("vit_tiny", device="meta", **option)
    assert expect in str(exc.value) and "\n" not in str(exc.value)


def test_valid_values_still_build():
    m = build_model("vit_tiny", device="meta", ffn_layer="swiglu64", n_storage_tokens=0, drop_path_rate=0.3)
    assert m.config["n_storage_tokens"] == 0 and m.config["ffn_layer"] == "swiglu64"
    assert build_model("vit_tiny", device="meta", ffn_hidden_dim=0).config["ffn_hidden_dim"] == 768  # 0: from ratio


def test_cli_info_exit_2(capsys, tmp_path):
    one_line_exit_2(capsys, tmp_path, "info", "arch:vit_tiny?ffn_layer=foo", expect=("ffn_layer='foo'",))
