"""`viz attention` audit fixes: a raster without --sensor is read by the backbone's normalisation record (as
`geodino embed` reads it) and the run says so; a `.txt` list is checked entry by entry and a list of one raster is
that raster; an out-of-range --mass names the flag and the Python keyword, before the backbone is loaded."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from geodino import cli
from geodino.errors import InputError
from geodino.models import build_model
from geodino.models.checkpoints import save_backbone
from geodino.viz.attention import attention_maps, mass_mask, read_input
from tests.embed.conftest import write_tif
from tests.test_bad_inputs import one_line_exit_2

REC = {"sensor": "demo4", "bands": ["blue", "green", "red", "nir"], "scale": 1e-4,
       "mean": [0.05, 0.08, 0.07, 0.3], "std": [0.02, 0.03, 0.04, 0.1]}  # fmt: skip


@pytest.fixture
def recorded(tmp_path) -> Path:
    """A 4-band backbone export whose record names sensor demo4 (DN x 1e-4), as `make demo` writes one."""
    import torch

    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=4, depth=1).eval()
    return Path(save_backbone(model, tmp_path / "bb.pth", normalization=REC))


def _dn(tmp_path: Path, name: str = "s2.tif", dtype: str = "uint16") -> tuple[Path, np.ndarray]:
    data = (np.random.default_rng(0).random((4, 32, 48)) * 3000 + 1).astype(dtype)
    return write_tif(tmp_path / name, data), data


def test_a_raster_without_sensor_is_read_by_the_backbone_record(tmp_path, recorded, capsys):
    from geodino.backbones import load_backbone

    tif, data = _dn(tmp_path)
    # the CLI: it ran (it asked for --sensor) and said which rule it used
    out = tmp_path / "att"
    capsys.readouterr()
    assert cli.main(["viz", "attention", str(tif), "-b", str(recorded), "-o", str(out)]) == 0
    err = capsys.readouterr().err
    # embed's words for the record's scaling, in one pair of brackets
    said = f"geodino: no --sensor given: {tif} is read with DN -> reflectance x*0.0001 (the backbone's record: "
    assert said + "sensor demo4, in bb.heads.pth beside bb.pth; --sensor to change)\n" in err
    assert json.loads((out / "attention.json").read_text())["patch_grid"] == [4, 6]
    # read as DN x 1e-4, and the maps written are those of that image
    bb = load_backbone(str(recorded))
    sample = read_input(tif, backbone=bb)
    np.testing.assert_allclose(sample["image"], data.astype(np.float32) * np.float32(1e-4), rtol=1e-6)
    assert sample["sensor"].name == "demo4" and sample["bands"] == REC["bands"]
    assert "x*0.0001 (the backbone's record: sensor demo4, in bb.heads.pth beside bb.pth" in sample["sensor_note"]
    maps = attention_maps(bb, sample)
    import rasterio

    with rasterio.open(out / "attention.tif") as cog:
        np.testing.assert_allclose(cog.read(1), maps.mean, rtol=1e-5, atol=1e-7)
    # float pixels are reflectance already, as embed reads them: the record's bands, scale 1
    ftif, fdata = _dn(tmp_path, "refl.tif", "float32")
    np.testing.assert_array_equal(read_input(ftif, backbone=bb)["image"], fdata)


def test_a_backbone_without_a_record_still_asks_for_the_sensor(tmp_path, capsys):
    tif, _ = _dn(tmp_path)
    one_line_exit_2(capsys, tmp_path, "viz", "attention", tif, "-b", "arch:vit_tiny?depth=1&in_chans=4", "-o",
                    tmp_path / "att", expect=("need a sensor: set --sensor",))  # fmt: skip


def test_a_list_is_checked_and_a_list_of_one_is_that_raster(tmp_path, recorded, capsys):
    from geodino.backbones import load_backbone

    notes = tmp_path / "notes.txt"
    notes.write_text("hello\n")
    # was "raster hello: cannot be read"
    one_line_exit_2(capsys, tmp_path, "viz", "attention", notes, "-b", recorded, "-o", tmp_path / "att",
                    expect=(f"file list {notes}, line 1: raster {tmp_path / 'hello'} does not exist",))  # fmt: skip
    tif, _ = _dn(tmp_path)
    one = tmp_path / "one.txt"
    one.write_text("# the scene\ns2.tif\n")
    bb = load_backbone(str(recorded))
    via, direct = read_input(one, backbone=bb), read_input(tif, backbone=bb)
    np.testing.assert_array_equal(via["image"], direct["image"])
    assert via["path"] == direct["path"] == str(tif)
    two = tmp_path / "two.txt"
    two.write_text(f"s2.tif\n{_dn(tmp_path, 'b.tif')[0]}\n")
    with pytest.raises(InputError, match=r"^input .*two\.txt lists 2 rasters; viz attention draws the maps of one"):
        read_input(two, backbone=bb)


def test_mass_out_of_range_names_the_flag_and_keyword_before_loading(tmp_path, capsys, monkeypatch):
    import geodino.backbones

    with pytest.raises(InputError, match=r"^--mass 0 \(mass=0 in Python\): the attention mass share .* \(0, 1\]"):
        mass_mask(np.ones((2, 2)), 0)
    with pytest.raises(InputError, match=r"^--mass nan \(mass=nan in Python\)"):
        mass_mask(np.ones((2, 2)), float("nan"))
    tif, _ = _dn(tmp_path)
    loads = []
    monkeypatch.setattr(geodino.backbones, "load_backbone", lambda *a, **k: loads.append(a))
    one_line_exit_2(capsys, tmp_path, "viz", "attention", tif, "-b", "arch:vit_tiny", "-o", tmp_path / "att",
                    "--mass", "1.5", expect=("--mass 1.5 (mass=1.5 in Python)", "must be in (0, 1]"))  # fmt: skip
    assert not loads
