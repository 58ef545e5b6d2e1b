"""`geodino convert` and `geodino info` through geodino.cli.main, including every bad-input path (exit code 2)."""

from __future__ import annotations

import pytest
import torch

import geodino.cli
from geodino.models import build_model
from geodino.models.checkpoints import load_model, save_backbone

pytestmark = pytest.mark.usefixtures("only_model_commands")


def run(capsys, *argv: str) -> tuple[int, str, str]:
    code = geodino.cli.main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def tiny_file(tmp_path, name="m.pth", **kw):
    torch.manual_seed(0)
    m = build_model("vit_tiny", depth=2, **kw).eval()
    with torch.no_grad():
        for blk in m.blocks:
            blk.ls1.gamma.normal_(0, 0.5)
    return m, save_backbone(m, tmp_path / name)


# the colour baseline named by a band count alone is this test's input; it says its bands go unstandardised
@pytest.mark.filterwarnings("ignore:backbone baseline.colour.*no sensor:UserWarning")
def test_info_table_and_spec(capsys, tmp_path):
    code, out, _ = run(capsys, "info")
    assert code == 0
    lines = {ln.split()[0]: ln for ln in out.splitlines()[1:]}
    assert "21.60 M" in lines["vit_small"] and "303.15 M" in lines["vit_large"] and "6.716 B" in lines["vit_7b"]
    assert " 188 " in lines["vit_small"] and " 368 " in lines["vit_large"] and " 610 " in lines["vit_7b"]
    _, path = tiny_file(tmp_path, in_chans=12)
    code, out, _ = run(capsys, "info", str(path), "--image-size", "64", "32")
    assert code == 0
    info = dict(ln.split(None, 1) for ln in out.splitlines())
    assert info["bands"] == "12" and info["patch_size"] == "16" and info["layout"] == "official"
    assert info["keys"] == "38" and info["depth"] == "2" and info["grid"] == "4x2 patches"
    assert info["tokens"].startswith("13 ")
    assert info["weights"] == "every key and shape fits the architecture"
    # the colour baseline is a backbone spec too: 4 bands x (mean, std, 16 bins) features per patch
    code, out, _ = run(capsys, "info", "baseline:colour?bands=4&patch_size=8", "--image-size", "64")
    info = dict(ln.split(None, 1) for ln in out.splitlines())
    assert code == 0 and (info["bands"], info["embed_dim"], info["depth"], info["params"]) == ("4", "72", "1", "0.00 M")
    assert info["feature_map"] == "[72, 8, 8]"


def test_convert_round_trip_through_all_layouts(capsys, tmp_path):
    m, path = tiny_file(tmp_path)
    assert run(capsys, "convert", str(path), str(tmp_path / "hf"), "--to", "hf")[0] == 0
    assert (
        run(capsys, "convert", str(tmp_path / "hf"), str(tmp_path / "t.safetensors"), "--from", "hf", "--to", "timm")[0]
        == 0
    )
    code, out, _ = run(capsys, "convert", str(tmp_path / "t.safetensors"), str(tmp_path / "o.pth"), "--from", "timm")
    assert code == 0 and "wrote" in out
    back = load_model(tmp_path / "o.pth").eval()
    assert sorted(back.state_dict()) == sorted(m.state_dict())
    x = torch.randn(1, 3, 32, 48)
    with torch.no_grad():
        torch.testing.assert_close(back(x), m(x), atol=1e-5, rtol=1e-5)
    code, _, _ = run(capsys, "convert", str(path), str(tmp_path / "s2.pth"), "--bands", "B02", "B03", "blue", "red")
    assert code == 0 and load_model(tmp_path / "s2.pth").in_chans == 4


def one_line_error(capsys, *argv: str) -> str:
    code, _, err = run(capsys, *argv)
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("geodino: error: "), err
    return lines[0]


def test_bad_input_paths_exit_2_with_one_line(capsys, tmp_path):
    _, path = tiny_file(tmp_path)
    _, path12 = tiny_file(tmp_path, "m12.pth", in_chans=12)
    # another architecture: says what the weights are (dim, depth), not each mismatching key
    msg = one_line_error(capsys, "convert", str(path), str(tmp_path / "x.pth"), "--expect-arch", "vit_small")
    assert "holds a ViT (dim 192, depth 2), not vit_small (dim 384, depth 12)" in msg
    # another band count: suggests band adaptation
    msg = one_line_error(capsys, "convert", str(path12), str(tmp_path / "x.pth"), "--expect-bands", "3")
    assert "12 input bands and the model 3: adapt the patch embedding" in msg
    # image size not a multiple of the patch size: says both
    msg = one_line_error(capsys, "info", str(path), "--image-size", "500", "512")
    assert "image size 500x512 is not a multiple of the patch size 16" in msg
    # unknown architecture: lists the valid ones
    msg = one_line_error(capsys, "info", "arch:vit_gigantic")
    assert "unknown architecture 'vit_gigantic'" in msg and "vit_small, vit_small_plus" in msg
    # corrupt and truncated checkpoints
    (tmp_path / "trunc.pth").write_bytes(path.read_bytes()[:5000])
    assert "trunc.pth is corrupt or truncated" in one_line_error(capsys, "info", str(tmp_path / "trunc.pth"))
    # a library's long reason is cut at its first sentence (torch's goes on about filing bug reports), else with "..."
    from geodino.models.checkpoints.files import _first_line

    torch_text = (
        "PytorchStreamReader failed reading zip archive: failed finding central directory. This is an internal "
        "miniz error. If you are seeing this error, there is a high chance that your file was not written fully"
    )
    assert _first_line(RuntimeError(torch_text)) == (
        "PytorchStreamReader failed reading zip archive: failed finding central directory"
    )
    assert _first_line(RuntimeError("x" * 200)) == "x" * 157 + "..."
    assert _first_line(RuntimeError("short. reason\nmore")) == "short. reason"
    (tmp_path / "junk.safetensors").write_bytes(b"garbage" * 20)
    assert "not a readable safetensors file" in one_line_error(capsys, "info", str(tmp_path / "junk.safetensors"))
    # a .pth that needs pickle code: refused
    torch.save(build_model("vit_tiny", depth=1), tmp_path / "pickled.pth")
    msg = one_line_error(capsys, "convert", str(tmp_path / "pickled.pth"), str(tmp_path / "y.pth"))
    assert "needs pickled Python code" in msg and "refused" in msg
    # wrong declared layout and existing output
    assert "is in the official layout, not hf" in one_line_error(
        capsys, "convert", str(path), str(tmp_path / "z.pth"), "--from", "hf"
    )
    assert "already exists" in one_line_error(capsys, "convert", str(path), str(path12))


@pytest.mark.parametrize(
    ("spec", "said"),
    [
        ("arch:vit_tiny?bands=4,3,2&depth=1", r"bands='4,3,2' cannot be used: a backbone's bands are band names"),
        ("arch:vit_tiny?bands=4&in_chans=5&depth=1", r"bands=4 but in_chans=5"),
    ],
)
def test_info_refuses_an_arch_spec_load_backbone_refuses(capsys, spec, said):
    """`info` described `?bands=4,3,2` (band numbers) as a 3-band model and `?bands=4&in_chans=5` as 5 bands, where
    `load_backbone` refuses both: it now says what loading would say, in one line; a band count or names still
    describe their model."""
    import re

    assert geodino.cli.main(["info", spec]) == 2
    out, err = capsys.readouterr()
    assert out == "" and len(err.strip().splitlines()) == 1 and re.search(said, err), err
    for good, n in (("arch:vit_tiny?bands=5&depth=1", 5), ("arch:vit_tiny?bands=red,green,blue,nir&depth=1", 4)):
        assert geodino.cli.main(["info", good]) == 0
        assert re.search(rf"^bands\s+{n}$", capsys.readouterr().out, re.M)
