"""`geodino convert --to hf|timm --overwrite` replaces only an empty folder or an earlier export of that kind: a
folder of other content (a project folder, `.`) is refused with one line and left intact; `.` and `..` work."""

from __future__ import annotations

import json
import os

import pytest
import torch

import geodino.cli
from geodino.errors import InputError
from geodino.io import atomic_path, temp_name
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone

HF_FILES = ["config.json", "model.safetensors", "preprocessor_config.json"]
# HF folders of random models without a normalisation record are these tests' input (that warning is
# test_normalization_records' subject)
pytestmark = [
    pytest.mark.usefixtures("only_model_commands"),
    pytest.mark.filterwarnings("ignore:HF folder .* records no input normalisation:UserWarning"),
]


@pytest.fixture
def src(tmp_path):
    torch.manual_seed(0)
    return save_backbone(build_model("vit_tiny", patch_size=8, in_chans=4, depth=1), tmp_path / "bb.safetensors")


def run(capsys, *argv: str) -> tuple[int, str]:
    code = geodino.cli.main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out + err


def test_overwrite_refuses_a_folder_of_other_content_and_leaves_it_intact(capsys, tmp_path, src):
    d = tmp_path / "project"
    (d / "sub").mkdir(parents=True)
    (d / "notes.txt").write_text("mine")
    (d / "sub" / "data.csv").write_text("1,2")
    for layout in ("hf", "timm"):
        code, text = run(capsys, "convert", src, d, "--to", layout, "--overwrite")
        assert code == 2, text
        assert f"output folder {d} holds other content (notes.txt, sub/)" in text
        assert "--overwrite replaces only an empty folder or an earlier" in text
        assert len(text.strip().splitlines()) == 1
        assert (d / "notes.txt").read_text() == "mine" and (d / "sub" / "data.csv").read_text() == "1,2"
    # an export plus one foreign file is not an export either
    hf = tmp_path / "hf"
    save_backbone(build_model("vit_tiny", patch_size=8, in_chans=4, depth=1), hf, layout="hf")
    (hf / "README.md").write_text("keep")
    with pytest.raises(InputError, match=r"holds other content \(README.md\)"):
        save_backbone(build_model("vit_tiny", patch_size=8, in_chans=4, depth=1), hf, layout="hf")
    assert (hf / "README.md").read_text() == "keep"


def test_overwrite_replaces_an_earlier_export_of_that_kind_only(capsys, tmp_path, src):
    out = tmp_path / "out"
    assert run(capsys, "convert", src, out, "--to", "hf")[0] == 0
    code, text = run(capsys, "convert", src, out, "--to", "hf", "--overwrite")
    assert code == 0, text
    assert sorted(p.name for p in out.iterdir()) == HF_FILES
    assert sorted(p.name for p in tmp_path.iterdir()) == ["bb.safetensors", "out"]  # no temporaries left
    # an HF export is not a timm export: --to timm does not replace it
    code, text = run(capsys, "convert", src, out, "--to", "timm", "--overwrite")
    assert code == 2 and "holds other content (preprocessor_config.json)" in text
    # a timm export holds a subset of an HF export's names, but is of another kind
    t = tmp_path / "t"
    assert run(capsys, "convert", src, t, "--to", "timm")[0] == 0
    code, text = run(capsys, "convert", src, t, "--to", "hf", "--overwrite")
    assert (
        code == 2 and "holds files of another kind (config.json, model.safetensors, not an earlier HF export)" in text
    )
    assert json.loads((t / "config.json").read_text())["architecture"].startswith("vit_")
    # a file in the way of a folder output is not replaced either
    f = tmp_path / "plain"
    f.write_text("x")
    code, text = run(capsys, "convert", src, f, "--to", "hf", "--overwrite")
    assert code == 2 and f"output {f} is a file, and HF export is a folder" in text and f.read_text() == "x"


def test_dot_and_dotdot_outputs(capsys, tmp_path, src, monkeypatch):
    here = tmp_path / "here"
    here.mkdir()
    monkeypatch.chdir(here)
    assert temp_name(".").parent == tmp_path and temp_name(".").name.startswith(".here.tmp-")
    code, text = run(capsys, "convert", src, ".", "--to", "hf", "--overwrite")  # was: ValueError (empty name)
    assert code == 0, text
    inode = os.stat(".").st_ino
    code, text = run(capsys, "convert", src, ".", "--to", "hf", "--overwrite")  # replaces the export in place
    assert code == 0, text
    assert os.stat(".").st_ino == inode and os.path.samefile(os.getcwd(), here)  # the shell's folder stays
    assert sorted(os.listdir(".")) == HF_FILES and sorted(p.name for p in tmp_path.iterdir()) == [
        "bb.safetensors",
        "here",
    ]
    (here / "notes.txt").write_text("mine")
    code, text = run(capsys, "convert", src, ".", "--to", "hf", "--overwrite")
    assert code == 2 and f"output folder {here} holds other content (notes.txt)" in text
    # `sub/..` names `here` itself (not a sibling of it): refused the same way, nothing created
    (here / "sub").mkdir()
    code, text = run(capsys, "convert", src, "sub/..", "--to", "timm", "--overwrite")
    assert code == 2 and f"output folder {here} holds other content" in text
    assert sorted(os.listdir(".")) == sorted([*HF_FILES, "notes.txt", "sub"])


def test_other_folder_outputs_keep_their_swap(tmp_path):
    """atomic_path without `replaces` (Zarr stores) still replaces the whole folder, as before."""
    store = tmp_path / "s.zarr"
    (store / "c").mkdir(parents=True)
    with atomic_path(store) as tmp:
        tmp.mkdir()
        (tmp / "zarr.json").write_text("{}")
    assert sorted(p.name for p in store.iterdir()) == ["zarr.json"]
