"""`geodino convert FILE OUT --src-bands ...` without `--bands` or `--sensor` was ignored: an unnamed record (a
foreign HF processor's mean/std) stayed unnamed and a wrong band count passed. Now the names go into the record,
a count other than the checkpoint's is refused in one line, and a file with no record to name says so."""

from __future__ import annotations

import warnings

import pytest
import torch

import geodino.cli
from geodino.models import build_model
from geodino.models.checkpoints import read_backbone_weights, save_backbone

pytestmark = pytest.mark.usefixtures("only_model_commands")


def tiny(tmp_path, record=None):
    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1)
    return save_backbone(model, tmp_path / "t.safetensors", normalization=record)


def test_src_bands_name_an_unnamed_record(tmp_path):
    src = tiny(tmp_path, {"mean": [0.1, 0.2, 0.3, 0.4], "std": [0.5] * 4})
    out = tmp_path / "o.safetensors"
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert geodino.cli.main(["convert", str(src), str(out), "--src-bands", "R", "G", "B", "N"]) == 0
    rec = read_backbone_weights(out).normalization
    assert rec["bands"] == ["R", "G", "B", "N"] and rec["mean"] == pytest.approx([0.1, 0.2, 0.3, 0.4])


def test_a_wrong_count_or_other_names_are_refused(tmp_path, capsys):
    src = tiny(tmp_path, {"mean": [0.1] * 4, "std": [0.5] * 4, "bands": ["R", "G", "B", "N"]})
    out = tmp_path / "o.safetensors"
    assert geodino.cli.main(["convert", str(src), str(out), "--src-bands", "R", "G", "B"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "--src-bands name 3 bands (R, G, B) but checkpoint" in err[0] and "takes 4" in err[0]
    assert geodino.cli.main(["convert", str(src), str(out), "--src-bands", "B02", "B03", "B04", "B08"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "are not the bands" in err[0] and "(R, G, B, N)" in err[0]
    assert not out.exists()


def test_without_a_record_it_says_nothing_is_recorded(tmp_path):
    src = tiny(tmp_path)
    with pytest.warns(UserWarning, match="records no normalisation.*pass their sensor too"):
        assert geodino.cli.main(["convert", str(src), str(tmp_path / "o.pth"), "--src-bands", "R", "G", "B", "N"]) == 0
    assert read_backbone_weights(tmp_path / "o.pth").normalization is None
