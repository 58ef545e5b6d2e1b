"""`geodino.pretrain(data, out)`: one call from a data folder to a run folder with an export."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

import geodino
from geodino.config import load_config
from geodino.errors import InputError
from geodino.train.api import source_of
from geodino.train.pretrain import PretrainConfig
from tests.helpers import write_tif
from tests.train.conftest import write_config


def test_the_source_type_follows_the_files(tmp_path, tiny_data):
    """Georeferenced rasters are a `raster` source (tiles cut from scenes), PNG chips and TIFF chips without a CRS
    an `images` source; the sensor is passed through; an empty folder is one line."""
    # 8-bit RGB rasters: the reader's sat493m default is named, so that the export records it
    assert source_of(tiny_data) == f"data.sources=[{{type: raster, paths: ['{tiny_data}'], sensor: 'sat493m'}}]"
    chips = tmp_path / "chips"
    chips.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(chips / "a.png")
    assert source_of(chips, "imagenet") == f"data.sources=[{{type: images, paths: ['{chips}'], sensor: 'imagenet'}}]"
    plain = tmp_path / "plain"
    plain.mkdir()
    write_tif(plain / "a.tif", np.zeros((3, 8, 8), np.uint8), crs=None, transform=None)
    assert "type: images" in source_of(plain)
    odd = tmp_path / "it's, odd: 1"  # quotes, a comma and a colon stay part of the path
    odd.mkdir()
    Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(odd / "b.png")
    assert load_config(PretrainConfig, None, [source_of(odd)]).data.sources[0].paths == [str(odd)]
    with pytest.raises(InputError, match=r"holds georeferenced rasters .* and 1 image chip .*; a source is one kind"):
        mixed = tmp_path / "mixed"
        mixed.mkdir()
        write_tif(mixed / "a.tif", np.zeros((3, 8, 8), np.uint8))
        Image.fromarray(np.zeros((8, 8, 3), np.uint8)).save(mixed / "b.png")
        source_of(mixed)
    with pytest.raises(InputError, match=r"^tile_size=32 applies to rasters; .* holds image chips"):
        source_of(chips, tile_size=32)
    with pytest.raises(InputError, match="empty"):
        (tmp_path / "empty").mkdir()
        source_of(tmp_path / "empty")


def test_each_file_decides_its_kind_and_a_folder_of_both_tiff_kinds_is_refused(tmp_path):
    """TIFFs with and without a CRS in one folder: each file's header says what it is (the first file decided for
    all, so a chip TIFF behind a GeoTIFF was read as a raster, and GeoTIFFs behind a chip TIFF as chips); the line
    names one file of each kind. A TIFF whose header does not read is left to the reader's on_error."""
    chip = np.zeros((3, 8, 8), np.uint8)
    for name, first_geo in (("geo_first", True), ("chip_first", False)):
        folder = tmp_path / name
        folder.mkdir()
        write_tif(folder / "a.tif", chip, **({} if first_geo else {"crs": None}))
        write_tif(folder / "b.tif", chip, **({"crs": None} if first_geo else {}))
        geo, plain = ("a.tif", "b.tif") if first_geo else ("b.tif", "a.tif")
        want = rf"holds georeferenced rasters \(.*{geo}\) and 1 image chip without a CRS \(.*{plain}\); a source is one"
        with pytest.raises(InputError, match=want):
            source_of(folder)
    rasters = tmp_path / "rasters"
    rasters.mkdir()
    write_tif(rasters / "a.tif", np.zeros((4, 8, 8), np.uint16))
    write_tif(rasters / "b.tif", chip)
    (rasters / "c.tif").write_bytes(b"not a tiff")
    assert source_of(rasters) == f"data.sources=[{{type: raster, paths: ['{rasters}']}}]"  # sensor from a.tif: none
    broken = tmp_path / "broken"
    broken.mkdir()
    (broken / "c.tif").write_bytes(b"not a tiff")
    with pytest.raises(InputError, match=r"^cannot read .*c\.tif"):
        source_of(broken)


def test_pretrain_in_one_call_writes_the_run_and_its_export(tmp_path, tiny_data, tiny_run):
    """The call builds the same config as the command line would (data source, output_dir, steps) and leaves the
    export where it says; with init_from (an export with heads) the student takes its architecture and no
    heads-only warm-up is added."""
    cfg = write_config(tmp_path / "c.yaml", tmp_path / "unused", tiny_data)
    out = geodino.pretrain(tiny_data, tmp_path / "run", config=cfg, steps=1, tile_size=48)
    assert out == tmp_path / "run" and (out / "export" / "teacher.pth").is_file()
    saved = load_config(PretrainConfig, out / "config.yaml")
    assert saved.trainer.max_steps == 1 and saved.data.sources[0].type == "raster"
    assert saved.data.sources[0].paths == [str(tiny_data)]

    from geodino.backbones import load_backbone

    assert load_backbone(out / "export" / "teacher.pth").normalization["sensor"] == "sat493m"  # recorded
    export = tiny_run / "export" / "teacher.pth"
    out = geodino.pretrain(tiny_data, tmp_path / "cont", config=cfg, steps=1, tile_size=48, init_from=export)
    saved = load_config(PretrainConfig, out / "config.yaml")
    assert saved.init_from == str(export) and saved.ssl.student.arch == "vit_tiny" and saved.head_warmup_steps == 0
    # a file without heads: the heads train alone first, at least one step of a tiny run (0.1 x 2 rounded to none)
    import torch

    from geodino.models import build_model

    torch.save(build_model("vit_tiny", patch_size=8, depth=1).state_dict(), tmp_path / "bare.pth")
    out = geodino.pretrain(
        tiny_data, tmp_path / "bare", config=cfg, steps=2, tile_size=48, init_from=tmp_path / "bare.pth"
    )
    assert load_config(PretrainConfig, out / "config.yaml").head_warmup_steps == 1


def test_a_refused_call_leaves_no_new_folder(tmp_path):
    """A run refused after its output folder was made (16-bit rasters without a sensor) removed it from the CLI
    but not from Python: `geodino.pretrain` (and `pretrain(cfg)`) leave no empty folder either."""
    data = tmp_path / "u16"
    data.mkdir()
    write_tif(data / "a.tif", np.full((3, 64, 64), 1200, np.uint16))
    with pytest.raises(InputError, match="need a sensor"):
        geodino.pretrain(data, tmp_path / "runs" / "x", tile_size=32, steps=1)
    assert not (tmp_path / "runs").exists()


def test_distill_in_one_call_writes_each_student_export(tmp_path, tiny_run, images):
    """`geodino.distill(teacher, data, out)` builds the config the command line would (teacher spec, data source,
    output folder, steps, the student in place of the recipe's) and returns the export of each student, which loads
    as a backbone of the asked architecture."""
    from geodino.backbones import load_backbone
    from geodino.train.distill import DistillConfig

    teacher = tiny_run / "export" / "teacher.pth"
    quick = ["train.global_batch_size=4", "train.device=cpu", "train.progress_bar=false"]
    quick.append("schedules.momentum={start: 0.0, peak: 0.0, end: 1.0}")  # 1 step: export the student, not its init
    exports = geodino.distill(
        teacher,
        images,
        tmp_path / "d",
        student={"arch": "vit_tiny", "overrides": {"depth": 1}},
        steps=1,
        overrides=quick,
    )
    assert list(exports) == ["vit_tiny"] and exports["vit_tiny"].is_file()
    assert exports["vit_tiny"].is_relative_to(tmp_path / "d")
    saved = load_config(DistillConfig, tmp_path / "d" / "config.yaml")
    assert saved.teacher.spec == str(teacher) and saved.train.max_steps == 1
    assert [(s.name, s.arch, s.overrides) for s in saved.students] == [("vit_tiny", "vit_tiny", {"depth": 1})]
    assert saved.data.sources[0].type == "images" and saved.data.sources[0].paths == [str(images)]
    student = load_backbone(exports["vit_tiny"])
    assert (student.embed_dim, student.n_blocks, student.patch_size) == (192, 1, 8)  # patch: the teacher's


def test_distill_call_keeps_the_recipe_student_and_lets_overrides_win(monkeypatch, tmp_path, images):
    """Without `student` the recipe's students stay (small_vit_tiny_half: width 96); an override given after `steps`
    wins, as on the command line; a teacher path with `~` is expanded; a wrong student is one line before anything
    runs."""
    import geodino.train.distill
    from geodino.errors import ConfigError

    monkeypatch.setattr(geodino.train.distill, "distill", lambda cfg: cfg)  # the config the call would run
    monkeypatch.setenv("HOME", str(tmp_path))
    cfg = geodino.distill("~/t.pth", images, tmp_path / "d", steps=7, overrides="train.max_steps=9")
    assert cfg.train.max_steps == 9 and cfg.teacher.spec == str(tmp_path / "t.pth")
    assert [(s.name, s.overrides["embed_dim"]) for s in cfg.students] == [("vit_tiny_half", 96)]
    cfg = geodino.distill("arch:vit_small?seed=1", images, tmp_path / "d", config="vitl_to_vits", student="vit_tiny")
    assert cfg.teacher.spec == "arch:vit_small?seed=1" and [s.name for s in cfg.students] == ["vit_tiny"]
    teacher = "arch:vit_tiny?seed=0"
    with pytest.raises(ConfigError, match=r"students\[0\]\.arch='vit_smal' is not a known architecture.*vit_small"):
        geodino.distill(teacher, images, tmp_path / "e", student="vit_smal", steps=1)
    with pytest.raises(ConfigError, match=r"^student=3: give an architecture name"):
        geodino.distill(teacher, images, tmp_path / "f", student=3, steps=1)


def test_a_named_student_is_named_after_its_architecture():
    from geodino.train.api import _student

    assert _student("vit_small") == "{arch: vit_small, name: vit_small}"
    assert (
        _student({"arch": "vit_base", "drop_path_rate": 0.0}) == "{arch: vit_base, drop_path_rate: 0.0, name: vit_base}"
    )
    assert _student({"name": "s", "arch": "vit_small"}) == "{arch: vit_small, name: s}"


def test_python_arguments_are_named_in_the_refusals(tmp_path) -> None:
    """`pretrain(steps=0)` said `trainer.max_steps=0 must be >= 1` and `config="nope"` `pass ... to --config`: the
    Python argument is named (the config key and flag too)."""
    import numpy as np
    import pytest
    from PIL import Image

    from geodino.errors import ConfigError
    from geodino.train.api import distill, pretrain

    (tmp_path / "imgs").mkdir()
    Image.fromarray(np.zeros((32, 32, 3), np.uint8)).save(tmp_path / "imgs" / "a.png")
    data = tmp_path / "imgs"
    with pytest.raises(ConfigError, match=r"^steps=0 must be >= 1 \(the run's trainer\.max_steps\)$"):
        pretrain(data, out=tmp_path / "r", steps=0)
    with pytest.raises(ConfigError, match=r"^steps=-2 must be >= 1 \(the run's train\.max_steps\)$"):
        distill("arch:vit_tiny", data, tmp_path / "d", steps=-2)
    with pytest.raises(
        ConfigError, match=r"config file nope not found; pass an existing YAML file to --config \(config= in Python\)"
    ):
        pretrain(data, out=tmp_path / "r", config="nope")
