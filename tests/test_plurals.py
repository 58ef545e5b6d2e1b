"""Counts in messages in their number, through `geodino.errors.plural`: one test per module, each checking one
message with a count of 1 and of 2 (they said "1 bands", "1 blocks", "1 values", "1 tiles", or hedged with
"band(s)", "file(s)", "tile(s)", "key(s)", "process(es)")."""

from __future__ import annotations

import re
import tarfile
import warnings
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from geodino.errors import ConfigError, InputError
from tests.embed.conftest import write_tif

ONE_TWO = pytest.mark.parametrize("n", [1, 2])


def _said(n: int, one: str, many: str) -> str:
    return re.escape(one if n == 1 else many)


def _one_band_sensor(n: int):
    from geodino.data.sensors import Sensor

    bands = ("a", "b")[:n]
    return Sensor(f"s{n}", bands, 1 / 255, (0.1,) * n, (0.1,) * n, False)


# -- geodino.backbones ---------------------------------------------------------------------------------------------
@ONE_TWO
def test_backbones_frozen(n):
    from geodino.backbones import load_backbone

    rgb = load_backbone("baseline:colour")
    with pytest.raises(InputError, match=_said(n, "input has 1 band but", "input has 2 bands but")):
        rgb.normalize(torch.zeros(1, n, 8, 8))


@ONE_TWO
def test_backbones_layers(n):
    from geodino.backbones.layers import layer_indices

    said = _said(n, "a backbone with 1 block (0..0)", "a backbone with 2 blocks (0..1)")
    with pytest.raises(ConfigError, match=said):
        layer_indices([5], n)


@ONE_TWO
def test_backbones_load(n):
    from geodino.backbones import load_backbone

    spec = "baseline:colour?depth=2" + ("&width=3" if n == 2 else "")
    said = _said(n, f"1 unknown option in backbone spec {spec}: depth;", f"2 unknown options in backbone spec {spec}:")
    with pytest.raises(ConfigError, match=said):
        load_backbone(spec)


@ONE_TWO
def test_backbones_normalization(n):
    from geodino.backbones.normalization import sensor_stats

    said = _said(n, "sensor 's1' has 1 band (a) but", "sensor 's2' has 2 bands (a, b) but")
    with pytest.raises(ConfigError, match=said):
        sensor_stats(_one_band_sensor(n), None, 3, "spec", None)


# -- geodino.data --------------------------------------------------------------------------------------------------
@ONE_TWO
def test_data_archive(tmp_path, n):
    from geodino.data.archive import RasterArchive

    p = write_tif(tmp_path / "x.tif", np.ones((n, 16, 16), np.uint16))
    with pytest.raises(InputError, match=_said(n, "(1 band, uint16) need a sensor", "(2 bands, uint16) need a sensor")):
        RasterArchive([str(p)])


@ONE_TWO
def test_data_commands(tmp_path, capsys, n):
    from geodino import cli

    for k in range(n):
        write_tif(tmp_path / f"s{k}.tif", np.ones((3, 16, 16), np.uint8))
    assert cli.main(["data", "index", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert (f"{n} scene, 0 skipped" if n == 1 else f"{n} scenes, 0 skipped") in out, out


@ONE_TWO
def test_data_crops(n):
    from geodino.data.crops import CropsConfig, MultiCropTransform
    from geodino.data.sensors import get_sensor

    said = _said(n, "normalisation sensor 's1' has 1 band but", "normalisation sensor 's2' has 2 bands but")
    with pytest.raises(ConfigError, match=said):
        MultiCropTransform(CropsConfig(), get_sensor("maxar"), _one_band_sensor(n))


@ONE_TWO
def test_data_cubes(tmp_path, n):
    from geodino.data.cubes import CubeSource
    from tests.data.test_cubes import _cube

    stores = []
    for name, c in (("three", 3), ("other", n)):
        stores.append(str(tmp_path / f"{name}.zarr"))
        _cube(np.ones((c, 16, 16), np.uint16)).to_dataset().to_zarr(stores[-1], zarr_format=2)
    said = _said(n, "other.zarr has 1 band but", "other.zarr has 2 bands but")
    with pytest.raises(InputError, match=said):
        CubeSource(stores, sensor="maxar", tile_size=8)


@ONE_TWO
def test_data_curate_pipeline(n):
    from geodino.data.curate.pipeline import _warn_clipped_clusters

    with pytest.warns(UserWarning, match=_said(n, "has only 1 tile left after", "has only 2 tiles left after")):
        _warn_clipped_clusters([4], n)


@ONE_TWO
def test_data_images(tmp_path, n):
    from geodino.data.images import TarShardSource

    for k in range(n):
        with tarfile.open(tmp_path / f"s{k}.tar", "w") as tf:
            (tmp_path / "note.txt").write_text("no image")
            tf.add(tmp_path / "note.txt", arcname="note.txt")
    said = _said(n, "no images found in 1 tar shard such as", "no images found in 2 tar shards such as")
    with pytest.raises(InputError, match=said):
        TarShardSource(str(tmp_path))


@ONE_TWO
def test_data_loaders(n):
    from geodino.data.loaders import DataConfig, build_ssl_loader

    unknown = {"foo": 1, "bar": 2} if n == 2 else {"foo": 1}
    said = _said(n, "got 1 unknown option: foo", "got 2 unknown options: bar, foo")
    with pytest.raises(ConfigError, match=said):
        build_ssl_loader(DataConfig(), batch_size=2, **unknown)


@ONE_TWO
def test_data_normalization(tmp_path, n):
    from geodino.data.normalization import data_normalization
    from geodino.data.sensors import save_sensor_yaml

    norm = save_sensor_yaml(_one_band_sensor(n), tmp_path / "norm.yaml")
    rec, why = data_normalization({"sources": [{"type": "raster", "sensor": "maxar"}], "norm_sensor": str(norm)})
    assert rec is None and why == f"norm_sensor 's{n}' has {n} band{'s' if n > 1 else ''}, the data 3"


@ONE_TWO
def test_data_sensors(n):
    from geodino.data.sensors import Sensor

    with pytest.raises(ConfigError, match=_said(n, "'mean' has 1 value but", "'mean' has 2 values but")):
        Sensor("s", ("a", "b", "c"), 1.0, (0.1,) * n, (0.1,) * 3, False)


@ONE_TWO
def test_data_stats(tmp_path, n):
    from geodino.data.stats import compute_stats

    p = write_tif(tmp_path / "x.tif", np.ones((n, 16, 16), np.uint8))
    said = _said(n, "x.tif has 1 band but sensor 'maxar'", "x.tif has 2 bands but sensor 'maxar'")
    with pytest.raises(InputError, match=said):
        compute_stats(str(p), sensor="maxar", samples=2, tile_size=16, progress=False)


@ONE_TWO
def test_data_tiling(tmp_path, n):
    from geodino.data.archive import RasterArchive, RasterSource

    paths = [write_tif(tmp_path / "big.tif", np.ones((3, 64, 64), np.uint8))]
    paths += [write_tif(tmp_path / f"small{k}.tif", np.ones((3, 16, 16), np.uint8)) for k in range(n)]
    with warnings.catch_warnings(record=True) as w:
        warnings.simplefilter("always")
        RasterSource(RasterArchive([str(p) for p in paths], progress=False), tile_size=32, max_nodata_fraction=1.0)
    said = "1 raster smaller than the tile is left out" if n == 1 else "2 rasters smaller than the tile are left out"
    assert any(said in str(x.message) for x in w), [str(x.message) for x in w]


@ONE_TWO
def test_data_torchgeo_source(tmp_path, n):
    from geodino.data.loaders import SourceConfig, build_source
    from geodino.data.sensors import Sensor, save_sensor_yaml

    write_tif(tmp_path / "a.tif", np.ones((n, 40, 40), np.uint16))
    sensor = save_sensor_yaml(Sensor("s", ("a", "b", "c"), 1.0, (0,) * 3, (1,) * 3, False), tmp_path / "s.yaml")
    src = build_source(
        SourceConfig(
            type="torchgeo",
            dataset="torchgeo.datasets.RasterDataset",
            paths=[str(tmp_path / "a.tif")],
            sensor=str(sensor),
            tile_size=16,
        )
    )
    said = _said(n, "torchgeo dataset gives 1 band but", "torchgeo dataset gives 2 bands but")
    with pytest.raises(InputError, match=said):
        src.get(0, 0)


@ONE_TWO
def test_data_vrt(tmp_path, n):
    from geodino.data.vrt import mosaic_vrt

    a = write_tif(tmp_path / "a.tif", np.ones((n, 16, 16), np.uint8))
    b = write_tif(tmp_path / "b.tif", np.ones((3, 16, 16), np.uint8))
    said = r"b\.tif \(.*, 3 bands, uint8\) cannot join the mosaic .* of .*a\.tif \(.*, "
    said += _said(n, "1 band,", "2 bands,")
    with pytest.raises(InputError, match=said):
        mosaic_vrt([a, b], tmp_path / "m.vrt")


# -- geodino.embed -------------------------------------------------------------------------------------------------
@ONE_TWO
def test_embed_config(n):
    from geodino.embed.config import make_config

    options = dict(list({"overlaps": 8, "tiles": 64}.items())[:n])
    said = _said(n, "1 unknown embed option: overlaps (did you mean overlap?)", "2 unknown embed options: overlaps")
    with pytest.raises(ConfigError, match=said):
        make_config(None, None, None, options)


@ONE_TWO
def test_embed_pipeline(tmp_path, n):
    from geodino.embed import embed_raster
    from tests.embed.toy_backbones import ConvBackbone

    class FewMaps(ConvBackbone):  # gives n maps whatever the layers asked for
        def features(self, x, layers="last", norm=True):
            maps, pooled = super().features(x, layers, norm)
            return maps[:n], pooled[:n]

    src = write_tif(tmp_path / "in.tif", np.ones((3, 32, 32), np.uint8))
    said = _said(n, "returned 1 feature map for layers=[0, 1, 2]", "returned 2 feature maps for layers=[0, 1, 2]")
    with pytest.raises(ConfigError, match=said):
        embed_raster(src, FewMaps(n_convs=3), tmp_path / "o.tif", layers=[0, 1, 2], tile=32, overlap=0, progress=False)


@ONE_TWO
def test_embed_sources(tmp_path, n):
    from geodino.embed.sources import CubeSource, RasterSource
    from tests.data.test_cubes import _cube

    src = write_tif(tmp_path / "in.tif", np.ones((3, 8, 8), np.uint8))
    said = _said(n, "1 band (4) is not in raster", "2 bands (4, 5) are not in raster")
    with pytest.raises(InputError, match=said):
        RasterSource(str(src), bands=[1, 4, 5][: n + 1])
    said = _said(n, "1 band (4) is not in cube DataArray, which", "2 bands (4, 5) are not in cube DataArray, which")
    with pytest.raises(InputError, match=said):
        CubeSource(_cube(np.ones((3, 8, 8), np.uint8)), bands=[1, 4, 5][: n + 1])


@ONE_TWO
def test_embed_writers(tmp_path, n):
    from geodino.embed import embed_raster
    from geodino.embed.writers import damage_of
    from tests.embed.toy_backbones import ConvBackbone

    src = write_tif(tmp_path / "in.tif", np.ones((3, 64, 64), np.uint8))
    out = embed_raster(src, ConvBackbone(), tmp_path / "o.zarr", tile=32, overlap=0, chunk=8, progress=False)
    chunks = sorted(p for p in (out / "embedding").rglob("*") if p.is_file() and not p.name.startswith("."))
    for p in chunks[:n]:
        p.unlink()
    assert re.match(_said(n, "1 chunk file missing, e.g. embedding/", "2 chunk files missing, e.g."), damage_of(out))


# -- geodino.eval --------------------------------------------------------------------------------------------------
@ONE_TWO
def test_eval_canopy(n):
    from geodino.eval.canopy import pair_chms

    images = [Path("a.tif"), Path("b.tif")][:n]
    said = _said(n, "no CHM for 1 image (a.tif);", "no CHM for 2 images (a.tif, b.tif);")
    with pytest.raises(InputError, match=said):
        pair_chms(images, [Path(f"x{k}_CHM.tif") for k in range(3)])


@ONE_TWO
def test_eval_datasets(tmp_path, n):
    from geodino.eval.datasets import DatasetConfig, build_dataset
    from tests.eval.test_datasets import make_folder

    make_folder(tmp_path, {"a": 2, "b": 2})
    bands = ["nir", "swir"][:n]
    said = _said(n, "name 1 band but images in", "name 2 bands but images in")
    with pytest.raises(ConfigError, match=said):
        build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path), bands=bands), "train")


@ONE_TWO
def test_eval_dense(n):
    from geodino.eval.dense import check_bands

    said = _said(n, "x has 1 band but backbone bb expects 3", "x has 2 bands but backbone bb expects 3")
    with pytest.raises(InputError, match=said + ".*adapt the patch embedding to " + _said(n, "1 band (", "2 bands (")):
        check_bands(n, SimpleNamespace(in_chans=3, spec="bb"), "x")


@ONE_TWO
def test_eval_detection(tmp_path, n):
    from geodino.eval.detection import DetectionProbeConfig, load_detection_set
    from tests.eval.test_detection import _scene, write_csv

    _scene(tmp_path)
    write_csv(tmp_path / "scene.csv", "scene.tif", [(0, 0, 8, 8, "crown"), (8, 8, 16, 16, "palm")][:n])
    said = _said(n, "use 1 label not in class_names ['tree'] (crown); add it", "use 2 labels not in class_names")
    cfg = DetectionProbeConfig()
    with pytest.raises(InputError, match=said):
        load_detection_set([str(tmp_path / "scene.tif")], [str(tmp_path / "scene.csv")], cfg, ["tree"])


@ONE_TWO
def test_eval_features(n):
    from geodino.eval.features import band_mismatch_message

    text = band_mismatch_message(SimpleNamespace(in_chans=n, spec="bb"), 3, ["a", "b", "c"], "toy")
    assert text.startswith(f"backbone bb takes {n} band{'s' if n > 1 else ''} but toy has 3"), text


@ONE_TWO
def test_eval_metrics(n):
    from geodino.eval.metrics import check_labels

    said = _said(n, "holds 1 label value (5) but", "holds 2 label values (5, 6) but")
    with pytest.raises(InputError, match=said):
        check_labels(torch.tensor([0, 5, 6][: n + 1]), 3, 255, "mask x.png")


@ONE_TWO
def test_eval_segmentation(n):
    from geodino.eval.segmentation import check_label_counts

    counts = torch.tensor([5, 0, 0]) if n == 2 else torch.tensor([5, 0, 3])
    line = check_label_counts(counts, 0, 0, 8, SimpleNamespace(num_classes=3, ignore_index=255))
    assert line.endswith("; class 1 has no training pixel" if n == 1 else "; classes 1, 2 have no training pixel")


def test_inference():
    from geodino.inference import Throughput

    for n in (1, 2):
        speed = Throughput()
        speed.add(n)
        line = speed.line("x", SimpleNamespace(name="eager", reason=""))
        assert f", {n} image{'s' if n > 1 else ''} in " in line, line


# -- geodino.models ------------------------------------------------------------------------------------------------
@ONE_TWO
def test_models_build(n):
    from geodino.models import build_model

    unknown = {"dpeth": 1, "widht": 2} if n == 2 else {"dpeth": 1}
    said = _said(n, "1 unknown backbone option for vit_tiny: dpeth", "2 unknown backbone options for vit_tiny: dpeth")
    with pytest.raises(ConfigError, match=said):
        build_model("vit_tiny", **unknown)


@ONE_TWO
def test_models_checkpoints_bands(n):
    from geodino.models.checkpoints.bands import adapt_patch_embed

    names = ["a", "b", "c"][:n]
    said = _said(n, "1 source band name given for a patch embedding with 3 bands", "2 source band names given")
    with pytest.raises(ConfigError, match=said):
        adapt_patch_embed(torch.zeros(4, 3, 2, 2), names, ["a"])


@ONE_TWO
def test_models_checkpoints_files(n):
    from geodino.models.checkpoints.files import strict_mismatch

    own = {k: torch.zeros(1) for k in ("a", "b", "c")}
    text, _ = strict_mismatch(own, {"a": torch.zeros(1), **({"b": torch.zeros(1)} if n == 1 else {})})
    assert text == ("1 missing key: c" if n == 1 else "2 missing keys: b, c"), text


@ONE_TWO
def test_models_checkpoints_normalization(n):
    from geodino.errors import CheckpointError
    from geodino.models.checkpoints.normalization import check_normalization

    said = _said(n, "normalisation has 1 mean and 3 stds", "normalisation has 2 means and 3 stds")
    with pytest.raises(CheckpointError, match=said):
        check_normalization({"mean": [0.1] * n, "std": [1, 1, 1]}, "x")


@ONE_TWO
def test_models_layers_patch_embed(n):
    from geodino.models.layers.patch_embed import check_image_batch

    said = _said(n, "input has 1 band but the backbone expects 3", "input has 2 bands but the backbone expects 3")
    with pytest.raises(InputError, match=said):
        check_image_batch(torch.zeros(1, n, 8, 8), 3, 8)


@ONE_TWO
def test_models_vit(n):
    from geodino.models.vit import block_indices

    with pytest.raises(InputError, match=_said(n, "with 1 block (valid 0..0)", "with 2 blocks (valid 0..1)")):
        block_indices([5], n)


# -- geodino.train -------------------------------------------------------------------------------------------------
@ONE_TWO
def test_train_pretrain(n):
    from geodino.train.pretrain import check_data_fits

    cfg = SimpleNamespace(ssl=SimpleNamespace(student=SimpleNamespace(in_chans=3)))
    said = _said(n, "the data has 1 band per image", "the data has 2 bands per image")
    with pytest.raises(InputError, match=said):
        check_data_fits(cfg, {"global_crops": torch.zeros(2, n, 8, 8)})


@ONE_TWO
def test_train_schedules(n):
    from geodino.config import load_config
    from geodino.train.recipe import SSLConfig
    from geodino.train.schedules import Schedules

    cfg = load_config(SSLConfig, None, ["schedules.lr.warmup_iters=4", "schedules.lr.hold_iters=7"])
    said = _said(n, "exceeds the run's 1 iteration;", "exceeds the run's 2 iterations;")
    with pytest.raises(ConfigError, match=said):
        Schedules.build(cfg, total_iters=n)


# -- geodino.viz ---------------------------------------------------------------------------------------------------
@ONE_TWO
def test_viz_attention(n):
    from geodino.viz.attention import _layer_index

    said = _said(n, "the backbone has 1 block (0..0, -1 last)", "the backbone has 2 blocks (0..1, -1 last)")
    with pytest.raises(InputError, match=said):
        _layer_index(3, n)


def test_viz_commands(tmp_path, capsys):
    from PIL import Image

    from geodino import cli
    from tests.embed.conftest import random_image

    Image.fromarray(random_image(32, 32).transpose(1, 2, 0)).save(tmp_path / "a.png")
    args = ["viz", "attention", str(tmp_path / "a.png"), "-b", "arch:vit_tiny?depth=1&seed=0", "-o"]
    for heads, said in ((["0"], "block 0, 1 head, patch grid"), (["0", "2"], "block 0, 2 heads, patch grid")):
        capsys.readouterr()
        assert cli.main([*args, str(tmp_path / f"o{len(heads)}"), "--heads", *heads]) == 0
        assert said in capsys.readouterr().out
