"""`file_scale: false` for the probes and `embed images`, as `geodino embed` has it: a file's declared GDAL
scale/offset is not read, the dtype rule applies (the probe's scale line says the switch is off); on (the default),
the declaration applies. Before, the probes and `embed images` had no way to turn a wrong declaration off."""

from __future__ import annotations

import pytest
import torch

from geodino.config import load_config
from geodino.errors import ConfigError
from geodino.eval import dense
from geodino.eval.scaling import InputScaling
from geodino.eval.segmentation import SegmentationProbeConfig
from tests.eval.test_declared_scaling import LANDSAT, SPEC, by_hand, classes, dn_of, tagged


@pytest.mark.parametrize("file_scale", [True, False])
def test_a_dense_probe_reads_a_declaring_file_by_its_declaration_or_with_file_scale_false_by_dtype(
    tmp_path, file_scale
):
    path = tagged(tmp_path / "a.tif", dn := dn_of(0), LANDSAT)
    cfg = load_config(SegmentationProbeConfig, None, ["num_classes=2", f"file_scale={str(file_scale).lower()}"])
    assert cfg.file_scale is file_scale
    scaling = InputScaling.of(cfg)
    dense.settle_scaling(scaling, [path])
    got = dense.to_image_tensor(dense.read_raster(path), scaling)
    want = by_hand(dn, *LANDSAT) if file_scale else by_hand(dn, [1e-4], [0.0])  # 16-bit: the dtype rule, x/10000
    torch.testing.assert_close(got, want, rtol=0, atol=0)
    said = scaling.describe()
    if file_scale:
        assert said == "x*2.75e-05-0.2 (declared by the file: GDAL scale/offset)"
    else:
        assert said.startswith("x/10000 (by dtype: uint16")
        assert said.endswith("; the files' own GDAL scale/offset not read (file_scale false)")


def test_an_image_folder_with_data_file_scale_false_reads_by_dtype_and_says_so(tmp_path):
    """The classification probe's image_folder: `data.file_scale=false` reads declaring uint16 files by the dtype
    rule, says so in the dataset's rule, and its feature-cache key differs from the declared read's."""
    from geodino.eval.datasets import DatasetConfig, build_dataset

    dn = classes(tmp_path, LANDSAT)
    on = build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path), val_fraction=0.0), "train")
    cfg = load_config(
        DatasetConfig, None, ["name=image_folder", f"root={tmp_path}", "val_fraction=0", "file_scale=false"]
    )
    off = build_dataset(cfg, "train")
    got = {off.labels[i]: off[i]["image"] for i in range(len(off))}
    for k, c in enumerate("ab"):
        torch.testing.assert_close(got[k], by_hand(dn[c], [1e-4], [0.0]), rtol=0, atol=0)
    assert on.scaling == "x*2.75e-05-0.2 (declared by each file: GDAL scale/offset)"
    assert off.scaling.startswith("x/10000 (by dtype: uint16")
    assert off.scaling.endswith("; the files' own GDAL scale/offset not read (data.file_scale false)")
    assert off.key != on.key


def test_a_given_scale_needs_no_word_about_the_switch(tmp_path):
    path = tagged(tmp_path / "a.tif", dn_of(0), LANDSAT)
    scaling = InputScaling.of(SegmentationProbeConfig(num_classes=2, data_scale=2e-4, file_scale=False))
    dense.to_image_tensor(dense.read_raster(path), scaling)
    assert scaling.describe() == "x*0.0002 (data_scale)"


def test_embed_images_file_scale_false_reads_the_dn_by_dtype(tmp_path, capsys):
    """A folder declaring Landsat's rule: with file_scale=False it is read by the dtype rule, by default by its
    declaration (the run's scaling line says which)."""

    from geodino.embed import embed_images
    from geodino.embed.pipeline import run_lines

    tagged(tmp_path / "dn" / "l.tif", dn_of(0), LANDSAT)
    said = {}
    for off in (True, False):
        with run_lines():
            embed_images(tmp_path / "dn", SPEC, tmp_path / f"{off}.parquet", progress=False, file_scale=not off)
        said[off] = capsys.readouterr().err
    assert "input scaling x/10000 (by dtype: uint16" in said[True]
    assert "declared" not in said[True]
    assert "input scaling x*2.75e-05-0.2 (declared by the file: GDAL scale/offset)" in said[False]
    with pytest.raises(ConfigError, match="file_scale"):
        embed_images(tmp_path / "dn", SPEC, tmp_path / "bad.parquet", progress=False, file_scale="maybe")


@pytest.mark.parametrize("probe", ["canopy", "detection"])
def test_the_other_dense_probes_take_the_switch(probe):
    """The canopy and detection probe configs have the key too (the tests above read a segmentation config): its
    value reaches the probe's scaling."""
    from geodino.eval.canopy import CanopyProbeConfig
    from geodino.eval.detection import DetectionProbeConfig

    schema = {"canopy": CanopyProbeConfig, "detection": DetectionProbeConfig}[probe]
    assert InputScaling.of(load_config(schema, None, [])).file_scale is True
    cfg = load_config(schema, None, ["file_scale=false"])
    assert cfg.file_scale is False and InputScaling.of(cfg).file_scale is False
