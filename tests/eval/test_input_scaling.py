"""DN -> reflectance of the probes' image files: data_scale/data_offset, else the DN scale and offset the backbone's
export records (as `geodino embed` applies them), else by dtype; the rule used is said in one line."""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image

from geodino.errors import ConfigError
from geodino.eval import dense
from geodino.eval.canopy import CanopyProbeConfig, run_canopy, write_height_geotiff
from geodino.eval.datasets import DatasetConfig, build_dataset
from geodino.eval.detection import DetectionProbeConfig, load_detection_set
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
from tests.eval.conftest import read_dn, write_dn
from tests.eval.dense_backbone import tiny_backbone

LANDSAT = {  # Landsat Collection 2 Level-2 surface reflectance: DN * 2.75e-5 - 0.2
    "sensor": "landsat_c2l2",
    "bands": ["red", "green", "blue"],
    "scale": 2.75e-5,
    "offset": -0.2,
    "mean": [0.1, 0.1, 0.1],
    "std": [0.05, 0.05, 0.05],
    "origin": "pretraining data (sensor landsat_c2l2)",
}


@pytest.fixture(scope="module")
def landsat_export(tmp_path_factory):
    """A 3-band export whose record carries Landsat C2 L2's scale and offset."""
    from geodino.models import build_model
    from geodino.models.checkpoints import save_backbone

    torch.manual_seed(0)
    model = build_model("vit_tiny", patch_size=8, in_chans=3, depth=2)
    return save_backbone(model, tmp_path_factory.mktemp("export") / "landsat.safetensors", normalization=LANDSAT)


def recording(spec, monkeypatch) -> tuple[object, list[torch.Tensor]]:
    """The backbone `spec` (a fresh load) and the list every input of its `normalize` is appended to."""
    from geodino.backbones import load_backbone

    bb = load_backbone(str(spec))
    seen: list[torch.Tensor] = []
    plain = bb.normalize

    def normalize(x: torch.Tensor) -> torch.Tensor:
        seen.append(x.detach().clone())
        return plain(x)

    monkeypatch.setattr(bb, "normalize", normalize)
    return bb, seen


def seg_folder(root, n: int = 2, size: int = 32) -> list[np.ndarray]:
    """uint16 images of Landsat-like DN (7273..20000) with 0/1 masks; returns the images' DN in name order."""
    rng = np.random.default_rng(0)
    (root / "img").mkdir(parents=True)
    (root / "msk").mkdir()
    images = []
    for i in range(n):
        dn = rng.integers(7273, 20000, (3, size, size)).astype(np.uint16)
        write_dn(root / "img" / f"s{i}.tif", dn)
        mask = (np.arange(size)[:, None] // 8 + np.arange(size)[None] // 8) % 2
        Image.fromarray(mask.astype(np.uint8)).save(root / "msk" / f"s{i}_mask.png")
        images.append(dn)
    return images


def seg_cfg(root, **kw) -> SegmentationProbeConfig:
    folders = {"train_images": str(root / "img"), "train_masks": str(root / "msk")}
    folders.update(val_images=folders["train_images"], val_masks=folders["train_masks"])  # no split: s0 comes first
    return SegmentationProbeConfig(
        **folders, num_classes=2, crop_size=32, epochs=1, min_steps=1, plots=0, progress=False, **kw
    )


def reflectance(dn: np.ndarray, scale: float, offset: float = 0.0) -> torch.Tensor:
    return torch.from_numpy(dn.astype(np.float32)) * np.float32(scale) + np.float32(offset)


def scaling_lines(err: str, probe: str) -> list[str]:
    return [line for line in err.splitlines() if line.startswith(f"{probe}: input scaling ")]


# ------------------------------------------------------------------------------------------------ segmentation


def test_segmentation_scales_with_the_offset_the_backbone_records(tmp_path, landsat_export, monkeypatch, capsys):
    # before: uint16 DN * 1e-4 and no offset, whatever the backbone was trained on (0.73..2.0 instead of 0..0.35)
    images = seg_folder(tmp_path / "data")
    bb, seen = recording(landsat_export, monkeypatch)
    run_segmentation(bb, seg_cfg(tmp_path / "data"), tmp_path / "out")
    torch.testing.assert_close(seen[0][0], reflectance(images[0], 2.75e-5, -0.2))
    lines = scaling_lines(capsys.readouterr().err, "segmentation")
    assert len(lines) == 1 and "x*2.75e-05-0.2 (the backbone's DN scale: sensor landsat_c2l2, in " in lines[0]
    assert "landsat.safetensors" in lines[0]
    saved = json.loads((tmp_path / "out" / "segmentation_metrics.json").read_text())
    assert saved["input_scaling"] == lines[0].removeprefix("segmentation: input scaling ")


def test_a_sensor_passed_with_the_backbone_scales_as_a_record(tmp_path, monkeypatch, capsys):
    """`?sensor=landsat8` (or backbone_sensor=) on a backbone without a record: the probe applies that sensor's
    DN scale and offset, as `geodino embed` does (it applied the dtype rule, x/10000 with no offset)."""
    images = seg_folder(tmp_path / "data")
    bb, seen = recording("arch:vit_tiny?seed=0&patch_size=8&bands=red,green,blue&sensor=landsat8", monkeypatch)
    run_segmentation(bb, seg_cfg(tmp_path / "data"), tmp_path / "out")
    torch.testing.assert_close(seen[0][0], reflectance(images[0], 2.75e-5, -0.2))
    lines = scaling_lines(capsys.readouterr().err, "segmentation")
    assert len(lines) == 1 and "x*2.75e-05-0.2 (the backbone's DN scale: sensor landsat8" in lines[0]


def test_an_explicit_data_scale_wins_over_the_record(tmp_path, landsat_export, monkeypatch, capsys):
    images = seg_folder(tmp_path / "data")
    bb, seen = recording(landsat_export, monkeypatch)
    run_segmentation(bb, seg_cfg(tmp_path / "data", data_scale=1e-4), tmp_path / "a")
    torch.testing.assert_close(seen[0][0], reflectance(images[0], 1e-4))
    seen.clear()
    run_segmentation(bb, seg_cfg(tmp_path / "data", data_scale=2e-5, data_offset=-0.1), tmp_path / "b")
    torch.testing.assert_close(seen[0][0], reflectance(images[0], 2e-5, -0.1))
    lines = scaling_lines(capsys.readouterr().err, "segmentation")
    assert lines == [
        "segmentation: input scaling x*0.0001 (data_scale)",
        "segmentation: input scaling x*2e-05-0.1 (data_scale, data_offset)",
    ]


def test_a_backbone_without_a_record_keeps_the_dtype_rule(tmp_path, monkeypatch):
    images = seg_folder(tmp_path / "data")
    bb = tiny_backbone()
    assert bb.normalization is None
    seen: list[torch.Tensor] = []
    plain = bb.normalize
    monkeypatch.setattr(bb, "normalize", lambda x: (seen.append(x.clone()), plain(x))[1])
    run_segmentation(bb, seg_cfg(tmp_path / "data"), tmp_path / "out")
    torch.testing.assert_close(seen[0][0], reflectance(images[0], 1e-4))
    saved = json.loads((tmp_path / "out" / "segmentation_metrics.json").read_text())
    assert saved["input_scaling"] == "x/10000 (by dtype: uint16; set data_scale if wrong)"


def test_data_offset_without_data_scale_is_refused_in_one_line():
    for cfg in (SegmentationProbeConfig(num_classes=2, data_offset=-0.2), CanopyProbeConfig(data_offset=-0.2)):
        with pytest.raises(
            ConfigError, match=r"^data_offset=-0.2 needs data_scale: set data_scale .*drop data_offset$"
        ):
            cfg.validate()
    with pytest.raises(ConfigError, match=r"^data_offset=-0.1 needs data_scale"):
        DetectionProbeConfig(data_offset=-0.1).validate()


# ------------------------------------------------------------------------------------------------ the rule itself


def test_a_record_that_does_not_fit_the_images_falls_back_to_the_dtype_rule():
    class Recorded:
        spec = "export.pth"
        norm_source = "recorded in export.pth: ..."

        def __init__(self, record):
            self.normalization = record

    landsat = dense.InputScaling(Recorded(LANDSAT))
    rgb8 = np.full((3, 2, 2), 200, np.uint8)
    scale, offset, text = landsat.rule(rgb8)  # 8-bit data through a 16-bit scale: a near-constant image
    assert scale == pytest.approx(1 / 255) and offset == 0.0
    assert text.startswith(
        "x/255 (by dtype: uint8; the backbone's DN scale x*2.75e-05-0.2 (sensor landsat_c2l2, in export.pth)"
    )
    assert "does not fit: the data is uint8 and it scales 16-bit DN; set data_scale if wrong)" in text
    scale, offset, _ = landsat.rule(np.ones((4, 2, 2), np.uint16) * 9000)
    assert np.ravel(scale).tolist() == pytest.approx([2.75e-5]) and np.ravel(offset).tolist() == pytest.approx([-0.2])
    per_band = dense.InputScaling(Recorded({**LANDSAT, "scale": [2.75e-5] * 3, "offset": [-0.2, -0.2, -0.1]}))
    scale, offset, text = per_band.rule(np.ones((3, 2, 2), np.uint16))
    assert scale.shape == (3, 1, 1) and np.ravel(offset).tolist() == pytest.approx([-0.2, -0.2, -0.1])
    assert text.startswith("x*[2.75e-05,2.75e-05,2.75e-05]+[-0.2,-0.2,-0.1] (the backbone's DN scale: sensor")
    scale, _, text = per_band.rule(np.ones((4, 2, 2), np.uint16))
    assert scale == pytest.approx(1e-4) and "does not fit: it has 3 values for 4 bands" in text
    eight = dense.InputScaling(Recorded({**LANDSAT, "scale": 1 / 255, "offset": 0.0}))
    scale = eight.rule(np.full((3, 2, 2), 200, np.uint16))[0]  # 8-bit DN stored as 16 bits: the record fits
    assert np.ravel(scale).tolist() == pytest.approx([1 / 255])
    scale, _, text = eight.rule(np.full((3, 2, 2), 3000, np.uint16))
    assert scale == pytest.approx(1e-4) and "uint16 with values above 255 and it scales 8-bit DN" in text
    bare = dense.InputScaling(Recorded({"mean": [0.5] * 3, "std": [0.2] * 3, "scale": 1.0}))  # a mean/std only
    assert bare.recorded is None and bare.rule(rgb8)[2] == "x/255 (by dtype: uint8; set data_scale if wrong)"


# ------------------------------------------------------------------------------------------------ canopy, detection


def test_canopy_scales_with_the_record_and_tags_heights_as_metres(tmp_path, landsat_export, monkeypatch, capsys):
    rng = np.random.default_rng(1)
    dn = rng.integers(7273, 20000, (3, 32, 32)).astype(np.uint16)
    write_dn(tmp_path / "a.tif", dn, georef=True)
    write_dn(tmp_path / "a_CHM.tif", rng.uniform(0, 20, (1, 32, 32)).astype(np.float32), georef=True)
    bb, seen = recording(landsat_export, monkeypatch)
    cfg = CanopyProbeConfig(
        train_images=[str(tmp_path / "a.tif")],
        train_chms=[str(tmp_path / "a_CHM.tif")],
        val_images=[str(tmp_path / "a.tif")],
        val_chms=[str(tmp_path / "a_CHM.tif")],
        predict_images=[str(tmp_path / "a.tif")],
        head="linear",
        layers="last",
        n_bins=8,
        crop_size=32,
        epochs=1,
        min_steps=1,
        progress=False,
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # one epoch: a degenerate tree_IoU
        run_canopy(bb, cfg, tmp_path / "out")
    expected = reflectance(dn, 2.75e-5, -0.2)
    torch.testing.assert_close(seen[0][0], expected)  # the training tile
    torch.testing.assert_close(seen[-1][0], expected)  # the raster read again from predict_images
    lines = scaling_lines(capsys.readouterr().err, "canopy")
    assert len(lines) == 1 and "x*2.75e-05-0.2 (the backbone's DN scale: sensor landsat_c2l2" in lines[0]
    saved = json.loads((tmp_path / "out" / "canopy_metrics.json").read_text())
    assert saved["input_scaling"].startswith("x*2.75e-05-0.2 (the backbone's DN scale: sensor landsat_c2l2")
    with rasterio.open(tmp_path / "out" / "a_height.tif") as src:
        assert src.units == ("m",)


def test_height_geotiff_band_unit_is_metres(tmp_path):
    ref = dense.Raster(np.zeros((1, 4, 4), np.uint8), np.ones((4, 4), bool), tmp_path / "x.tif")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not georeferenced
        write_height_geotiff(np.ones((4, 4), np.float32), ref, tmp_path / "h.tif")
        with rasterio.open(tmp_path / "h.tif") as src:
            assert src.units == ("m",) and src.tags()["units"] == "m"


def test_detection_files_are_scaled_by_the_run_rule(tmp_path, landsat_export):
    from geodino.backbones import load_backbone

    dn = np.random.default_rng(2).integers(7273, 20000, (3, 32, 32)).astype(np.uint16)
    write_dn(tmp_path / "scene.tif", dn)
    (tmp_path / "scene.csv").write_text("xmin,ymin,xmax,ymax,label\n2,2,12,12,tree\n")
    cfg = DetectionProbeConfig()
    scaling = dense.InputScaling.of(cfg, load_backbone(str(landsat_export)), "detection")
    data, _ = load_detection_set([str(tmp_path / "scene.tif")], [str(tmp_path / "scene.csv")], cfg, None, scaling)
    torch.testing.assert_close(data[0]["image"], reflectance(dn, 2.75e-5, -0.2))


# ------------------------------------------------------------------------------------------------ classification


def test_image_folder_scales_with_the_record_unless_data_scale_is_set(tmp_path, landsat_export):
    from geodino.backbones import load_backbone

    rng = np.random.default_rng(3)
    for split in ("train", "val"):
        for c in ("a", "b"):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(2):
                write_dn(tmp_path / split / c / f"{i}.tif", rng.integers(7273, 20000, (3, 16, 16)).astype(np.uint16))
    dn = read_dn(tmp_path / "train" / "a" / "0.tif")  # the first training sample
    bb = load_backbone(str(landsat_export))
    ds = build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path)), "train", backbone=bb)
    torch.testing.assert_close(ds[0]["image"], reflectance(dn, 2.75e-5, -0.2))
    assert ds.scaling.startswith("x*2.75e-05-0.2 (the backbone's DN scale: sensor landsat_c2l2")
    explicit = DatasetConfig(name="image_folder", root=str(tmp_path), scale=1e-4)
    ds = build_dataset(explicit, "train", backbone=bb)
    torch.testing.assert_close(ds[0]["image"], reflectance(dn, 1e-4))
    assert ds.scaling == "x*0.0001 (data.scale)"
    plain = build_dataset(DatasetConfig(name="image_folder", root=str(tmp_path)), "train")  # no backbone: by dtype
    torch.testing.assert_close(plain[0]["image"], reflectance(dn, 1e-4))
    assert plain.scaling == "x/10000 (by dtype: uint16; set data.scale if wrong)"


def test_classification_says_its_scaling_in_one_line_and_in_its_details(tmp_path, landsat_export, capsys):
    from geodino.backbones import load_backbone
    from geodino.eval.classification import ClassificationConfig, run_classification
    from geodino.eval.features import FeatureConfig

    rng = np.random.default_rng(4)
    for split in ("train", "val", "test"):
        for c, base in (("a", 8000), ("b", 16000)):
            (tmp_path / split / c).mkdir(parents=True)
            for i in range(2):
                dn = base + rng.integers(0, 500, (3, 16, 16))
                write_dn(tmp_path / split / c / f"{i}.tif", dn.astype(np.uint16))
    cfg = ClassificationConfig(
        data=DatasetConfig(name="image_folder", root=str(tmp_path)),
        features=FeatureConfig(cache=False, image_size=16, layers="last"),  # the export has 2 blocks, not four
        progress=False,
    )
    cfg.knn.ks = [1]
    cfg.linear.enabled = False
    run_classification(load_backbone(str(landsat_export)), cfg, tmp_path / "out")
    lines = scaling_lines(capsys.readouterr().err, "classification")
    assert len(lines) == 1 and "x*2.75e-05-0.2 (the backbone's DN scale: sensor landsat_c2l2" in lines[0]
    details = json.loads((tmp_path / "out" / "classification.json").read_text())
    assert details["input_scaling"] == lines[0].removeprefix("classification: input scaling ")
