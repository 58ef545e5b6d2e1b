"""Checkpoints: safe reading, unwrapping, architecture inference, strict loading, band adaptation, saving."""

from __future__ import annotations

import pytest
import torch

from geodino.errors import CheckpointError, ConfigError
from geodino.models import build_model
from geodino.models.checkpoints import (
    adapt_patch_embed,
    adapt_state_bands,
    infer_config,
    load_model,
    load_weights,
    read_backbone_weights,
    save_backbone,
    save_pth,
    save_safetensors,
)


class Custom:
    """A class that only unpickles by running this module's code."""


def tiny(**kw):
    torch.manual_seed(0)
    m = build_model("vit_tiny", depth=2, **kw).eval()
    with torch.no_grad():
        for blk in m.blocks:
            blk.ls1.gamma.normal_(0, 0.5)
            blk.ls2.gamma.normal_(0, 0.5)
            if blk.attn.qkv.bias is not None:
                blk.attn.qkv.bias.normal_(0, 0.5)
    return m


def same_outputs(a, b, x, atol=1e-6):
    with torch.no_grad():
        oa, ob = a.forward_features(x), b.forward_features(x)
    for k in ("x_norm_clstoken", "x_storage_tokens", "x_norm_patchtokens"):
        torch.testing.assert_close(oa[k], ob[k], atol=atol, rtol=0)


@pytest.mark.parametrize("suffix", [".pth", ".safetensors"])
def test_save_and_load_round_trip(tmp_path, suffix):
    m = tiny(in_chans=4, rope_sampling="per_forward", drop_path_rate=0.2)
    path = tmp_path / f"backbone{suffix}"
    save_backbone(m, path)
    loaded = load_model(path).eval()
    assert loaded.in_chans == 4 and loaded.n_blocks == 2 and loaded.embed_dim == 192
    same_outputs(m, loaded, torch.randn(2, 4, 32, 48))
    assert sorted(loaded.state_dict()) == sorted(m.state_dict())
    if suffix == ".safetensors":  # settings without a trace in the weights survive through the metadata
        assert loaded.config["rope_sampling"] == "per_forward"
        assert loaded.config["drop_path_rate"] == 0.2
    else:  # the .pth is a plain state_dict, loadable with weights_only=True
        raw = torch.load(path, weights_only=True)
        assert isinstance(raw, dict) and all(isinstance(v, torch.Tensor) for v in raw.values())
    assert not list(tmp_path.glob(".*tmp*"))


@pytest.mark.parametrize(
    ("arch", "overrides", "expect"),
    [
        ("vit_small", {}, {"arch": "vit_small", "ffn_layer": "mlp", "num_heads": 6, "n_storage_tokens": 4}),
        ("vit_large", {"untie_global_and_local_cls_norm": True}, {"arch": "vit_large", "num_heads": 16}),
        ("vit_small_plus", {}, {"arch": "vit_small_plus", "ffn_layer": "swiglu", "ffn_hidden_dim": 1536}),
        ("vit_7b", {}, {"arch": "vit_7b", "qkv_bias": False, "ffn_layer": "swiglu64", "ffn_hidden_dim": 8192}),
        ("vit_base", {"in_chans": 12, "n_storage_tokens": 0}, {"arch": "vit_base", "in_chans": 12}),
    ],
)
def test_infer_config_from_shapes(arch, overrides, expect):
    m = build_model(arch, device="meta", **overrides)
    cfg = infer_config(m.state_dict())
    for k, v in expect.items():
        assert cfg[k] == v, k
    for k in ("embed_dim", "depth", "num_heads", "ffn_hidden_dim", "qkv_bias", "n_storage_tokens", "in_chans"):
        assert cfg[k] == m.config[k], k
    assert cfg["untie_global_and_local_cls_norm"] == m.config["untie_global_and_local_cls_norm"]
    assert cfg["pos_embed_rope_base"] == 100.0


def test_infer_config_custom_size_and_bf16_periods():
    m = build_model("vit_tiny", embed_dim=96, depth=3, num_heads=4, ffn_layer="swiglu", ffn_hidden_dim=200)
    sd = m.state_dict()
    sd["rope_embed.periods"] = sd["rope_embed.periods"].to(torch.bfloat16)  # as stored in the released files
    cfg = infer_config(sd)
    assert cfg["arch"] is None
    assert (cfg["embed_dim"], cfg["depth"], cfg["num_heads"], cfg["ffn_hidden_dim"]) == (96, 3, 4, 200)
    assert cfg["pos_embed_rope_base"] == 100.0
    rebuilt = build_model(**cfg)
    assert {k: v.shape for k, v in rebuilt.state_dict().items()} == {k: v.shape for k, v in sd.items()}


def test_unwrap_official_eval_dump_wrappers_and_training_checkpoints(tmp_path):
    m = tiny()
    sd = m.state_dict()
    other = tiny(in_chans=5).state_dict()
    head = {"mlp.0.weight": torch.zeros(4, 192)}
    cases = {
        "eval.pth": {
            "teacher": {**{f"backbone.{k}": v for k, v in sd.items()}, **{f"dino_head.{k}": v for k, v in head.items()}}
        },
        "model.pth": {"model": sd},
        "ssl.ckpt": {
            "state_dict": {
                **{f"arch.teacher.backbone.{k}": v for k, v in sd.items()},
                **{f"arch.student.backbone.{k}": v for k, v in other.items()},
                **{f"arch.teacher.dino_head.{k}": v for k, v in head.items()},
            },
            "geodino": {"format": "geodino-ssl", "backbone": {**m.config, "rope_sampling": "per_forward"}},
            "global_step": 3,
        },
    }
    for name, obj in cases.items():
        torch.save(obj, tmp_path / name)
        w = read_backbone_weights(tmp_path / name)
        assert sorted(w.state) == sorted(sd), name
        same_outputs(m, load_model(tmp_path / name).eval(), torch.randn(1, 3, 32, 32))
    w = read_backbone_weights(tmp_path / "ssl.ckpt")
    assert w.kind == "geodino-ssl" and w.config["rope_sampling"] == "per_forward"
    student = load_model(tmp_path / "ssl.ckpt", which="student")
    assert student.in_chans == 5


def test_pickled_code_is_refused(tmp_path):
    path = tmp_path / "full_model.pth"
    torch.save(tiny(), path)  # a pickled nn.Module needs its classes to load
    with pytest.raises(CheckpointError, match=r"full_model\.pth needs pickled Python code.*refused"):
        read_backbone_weights(path)
    path2 = tmp_path / "odd.pth"
    torch.save({"cls_token": torch.zeros(1), "extra": Custom()}, path2)
    with pytest.raises(CheckpointError, match="refused"):
        load_model(path2)


def test_corrupt_truncated_and_missing_files(tmp_path):
    good = tmp_path / "good.pth"
    save_pth(tiny(), good)
    data = good.read_bytes()
    (tmp_path / "trunc.pth").write_bytes(data[: len(data) // 2])
    (tmp_path / "junk.pth").write_bytes(b"\x00\x01not a checkpoint" * 10)
    (tmp_path / "empty.pth").write_bytes(b"")
    st = tmp_path / "good.safetensors"
    save_safetensors(tiny(), st)
    (tmp_path / "trunc.safetensors").write_bytes(st.read_bytes()[:1000])
    for name in ("trunc.pth", "junk.pth", "empty.pth", "trunc.safetensors"):
        with pytest.raises(CheckpointError, match=rf"{name.replace('.', '[.]')}.*(corrupt|truncated|empty|readable)"):
            load_model(tmp_path / name)
    with pytest.raises(CheckpointError, match="not found"):
        load_model(tmp_path / "nope.pth")


def test_strict_mismatch_names_keys_and_shapes():
    small = build_model("vit_small", depth=2)
    with pytest.raises(CheckpointError) as err:
        load_weights(small, tiny().state_dict(), "tiny.pth")
    msg = str(err.value)
    assert "tiny.pth does not fit the model" in msg
    assert "cls_token [1,1,192] in the file vs [1,1,384] in the model" in msg
    assert "\n" not in msg
    with pytest.raises(CheckpointError, match=r"15 missing keys: blocks\.1\.norm1\.weight"):
        load_weights(build_model("vit_tiny", depth=2), build_model("vit_tiny", depth=1).state_dict(), "x")


def test_band_count_mismatch_suggests_adaptation():
    m12 = build_model("vit_tiny", depth=1, in_chans=12)
    with pytest.raises(CheckpointError, match=r"3 input bands and the model 12: adapt the patch embedding"):
        load_weights(m12, build_model("vit_tiny", depth=1).state_dict(), "rgb.pth")


def test_adapt_patch_embed_rules():
    torch.manual_seed(0)
    w = torch.randn(8, 3, 4, 4)
    dst = ["B02", "blue", "green", "red", "nir"]
    out = adapt_patch_embed(w, ["R", "G", "B"], dst, fill="mean")
    scale = 3 / 5
    torch.testing.assert_close(out[:, 3], w[:, 0] * scale)  # red
    torch.testing.assert_close(out[:, 2], w[:, 1] * scale)  # green
    torch.testing.assert_close(out[:, 1], w[:, 2] * scale)  # blue
    torch.testing.assert_close(out[:, 0], w.mean(1) * scale)  # unmatched -> mean RGB kernel
    torch.testing.assert_close(out[:, 4], w.mean(1) * scale)
    # A uniform input (all bands equal) gives the RGB model's response exactly.
    x = torch.randn(2, 1, 4, 4)
    rgb = torch.nn.functional.conv2d(x.expand(-1, 3, -1, -1), w)
    new = torch.nn.functional.conv2d(x.expand(-1, 5, -1, -1), out)
    torch.testing.assert_close(new, rgb, atol=1e-5, rtol=1e-5)
    zeros = adapt_patch_embed(w, ["R", "G", "B"], dst, fill="zeros")
    assert zeros[:, [0, 4]].abs().max() == 0
    torch.testing.assert_close(zeros[:, [3, 2, 1]], w)  # all three matched -> unchanged, scale 1
    two = adapt_patch_embed(w, ["R", "G", "B"], ["red", "green", "swir"], fill="zeros")
    torch.testing.assert_close(two[:, 0], w[:, 0] * 1.5)  # 3 / 2 matched
    with pytest.raises(ConfigError, match="none of the bands"):
        adapt_patch_embed(w, ["R", "G", "B"], ["swir1", "swir2"], fill="zeros")
    with pytest.raises(ConfigError, match="band fill"):
        adapt_patch_embed(w, ["R", "G", "B"], ["red"], fill="random")


def test_load_with_band_adaptation_keeps_rgb_behaviour(tmp_path):
    rgb = tiny()
    path = tmp_path / "rgb.safetensors"
    save_safetensors(rgb, path)
    bands = ["B01", "B02", "B03", "B04", "B05", "B06"]
    names = ["coastal", "blue", "green", "red", "re1", "re2"]
    with pytest.warns(UserWarning, match=r"3 bands \(coastal, re1, re2\) match(es)? no band of checkpoint"):
        m = load_model(path, bands=names, fill="zeros").eval()
    assert m.in_chans == 6
    x = torch.randn(1, 3, 32, 32)
    x6 = torch.randn(1, 6, 32, 32)
    x6[:, 3], x6[:, 2], x6[:, 1] = x[:, 0], x[:, 1], x[:, 2]
    with torch.no_grad():
        torch.testing.assert_close(m(x6), rgb(x), atol=1e-5, rtol=1e-5)
    with pytest.raises(CheckpointError, match=r"has 6 input bands and 4 were requested"):
        save_safetensors(m, tmp_path / "six.safetensors")
        load_model(tmp_path / "six.safetensors", bands=bands[:4])
    adapted = adapt_state_bands(rgb.state_dict(), names)
    assert adapted["patch_embed.proj.weight"].shape == (192, 6, 16, 16)


def test_a_missing_checkpoint_names_the_kinds_and_what_the_folder_holds(tmp_path):
    from geodino.models.checkpoints.files import read_file

    (tmp_path / "step_00000010.ckpt").write_bytes(b"x")
    with pytest.raises(CheckpointError, match=r"last.ckpt not found \(.* holds step_00000010.ckpt\); pass an existing "
                       r"checkpoint file \(.ckpt, .pth, .safetensors\)"):  # fmt: skip
        read_file(tmp_path / "last.ckpt")


_EXPORT_SCRIPT = """
import sys, torch
from geodino.models import build_model
from geodino.models.heads import DINOHead
from geodino.models.checkpoints import save_export
torch.manual_seed(0)
m = build_model("vit_tiny", patch_size=8, depth=1, n_storage_tokens=1)
heads = {"dino_head": DINOHead(m.embed_dim, 32, 16, 8), "ibot_head": DINOHead(m.embed_dim, 32, 16, 8)}
norm = {"bands": ["red", "green", "blue"], "mean": [0.1, 0.2, 0.3], "std": [1.0, 1.0, 1.0]}
save_export(sys.argv[1] + "/t", m, dict(m.config), heads, normalization=norm, note="x")
"""


def test_exports_are_byte_reproducible_across_processes(tmp_path):
    """The same weights exported by two processes gave different bytes: the .pth zip root carried the temporary
    name (with the process id) and safetensors wrote its metadata in per-process hash order."""
    import json
    import subprocess
    import sys

    from safetensors import safe_open
    from safetensors.torch import load_file

    dirs = [tmp_path / "a", tmp_path / "b"]
    for d in dirs:
        d.mkdir()
        subprocess.run([sys.executable, "-c", _EXPORT_SCRIPT, str(d)], check=True)
    names = sorted(p.name for p in dirs[0].iterdir())
    assert names == ["t.heads.pth", "t.pth", "t.safetensors", "t.stac.json"]
    for name in names[:3]:  # the STAC item records when it was written; the checksums it records are the same
        assert (dirs[0] / name).read_bytes() == (dirs[1] / name).read_bytes(), name
    items = [json.loads((d / "t.stac.json").read_text()) for d in dirs]
    assert [{k: a["file:checksum"] for k, a in i["assets"].items()} for i in items[1:]] == [
        {k: a["file:checksum"] for k, a in items[0]["assets"].items()}
    ]
    raw = (dirs[0] / "t.safetensors").read_bytes()
    header = json.loads(raw[8 : 8 + int.from_bytes(raw[:8], "little")])
    assert list(header["__metadata__"]) == sorted(header["__metadata__"]) and len(header["__metadata__"]) >= 3
    with safe_open(str(dirs[0] / "t.safetensors"), "pt") as f:  # still a valid file with the same metadata
        assert f.metadata() == header["__metadata__"]
    pth, st = torch.load(dirs[0] / "t.pth", weights_only=True), load_file(str(dirs[0] / "t.safetensors"))
    assert pth.keys() == st.keys() and all(torch.equal(pth[k], st[k]) for k in pth)
