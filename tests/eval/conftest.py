"""Set-ups shared by the probe tests of this folder."""

from __future__ import annotations

from pathlib import Path

import pytest


@pytest.fixture
def bigearthnet_cfg(tmp_path: Path):
    """A ClassificationConfig of a tiny BigEarthNet layout written under tmp_path/ben (multi-label, 12 bands):
    32 px images, no feature cache, kNN k=2, one linear grid point of 5 iterations, no progress bars."""
    from geodino.eval.classification import ClassificationConfig
    from geodino.eval.datasets import DatasetConfig
    from geodino.eval.features import FeatureConfig
    from geodino.eval.linear import LinearConfig
    from tests.eval.test_datasets import make_bigearthnet

    make_bigearthnet(tmp_path / "ben")
    cfg = ClassificationConfig(
        data=DatasetConfig(name="bigearthnet", root=str(tmp_path / "ben")),
        features=FeatureConfig(cache=False, image_size=32),
        linear=LinearConfig(lrs=[0.1], weight_decays=[0.0], n_last_blocks=[1], avgpool=[False], min_iterations=5),
        progress=False,
    )
    cfg.knn.ks = [2]
    return cfg


@pytest.fixture
def spec_backbones(monkeypatch) -> None:
    """Every probe backbone spec loads as a TinyBackbone of that spec, and the spec check is skipped: suites and
    comparisons run with made-up specs ('main', 'other') and read no checkpoint."""
    from geodino.eval import runner
    from tests.eval.tiny_backbone import TinyBackbone

    monkeypatch.setattr(runner, "load_probe_backbone", lambda spec, *a: TinyBackbone(spec=spec))
    monkeypatch.setattr("geodino.backbones.load.check_spec", lambda spec: None)


@pytest.fixture
def tiny_suite_cfg(tmp_path: Path, spec_backbones):
    """The tiny image-folder suite of tests/eval/test_runner.py (chips under tmp_path) as a SuiteConfig without
    progress bars, with `spec_backbones` in place: a comparison's set-up."""
    from geodino.config import load_config
    from geodino.eval.runner import SuiteConfig
    from tests.eval.test_runner import _suite

    return load_config(SuiteConfig, _suite(tmp_path), ["progress=false"])


DENSE_N = 150  # objects on the dense image of `dense_objects`


def dense_objects():
    """150 disjoint 6x6 boxes on a 15 x 10 grid of a 160 px image."""
    import torch

    return torch.tensor(
        [[c * 10.0, r * 10.0, c * 10.0 + 6, r * 10.0 + 6] for r in range(10) for c in range(15)], dtype=torch.float32
    )


def perfect_detector(boxes, detections_per_img: int):
    """A stand-in detector that finds every object (score falling with the index) and, as torchvision's detectors
    (RetinaNet) do, returns at most its best `detections_per_img`."""
    import torch
    from torch import nn

    class PerfectDetector(nn.Module):
        def __init__(self):
            super().__init__()
            self.w = nn.Parameter(torch.zeros(1))
            self.boxes = boxes
            self.detections_per_img = detections_per_img

        def forward(self, images):
            n = min(len(self.boxes), self.detections_per_img)
            scores = torch.linspace(0.99, 0.5, len(self.boxes))
            return [{"boxes": self.boxes[:n], "scores": scores[:n], "labels": torch.zeros(n, dtype=torch.long)}]

    return PerfectDetector()


def evaluate_dense(**keys):
    """Scores `perfect_detector` (built with COCO's cap, as build_detector builds it) on the dense image of
    `dense_objects` (one class 'tree') through detection._evaluate with a retinanet DetectionProbeConfig of
    tile_size 256 and `keys`; returns (metrics, detector, cfg)."""
    import torch

    from geodino.eval.detection import DetectionProbeConfig, _evaluate

    boxes = dense_objects()
    cfg = DetectionProbeConfig(detector="retinanet", tile_size=256, **keys)
    model = perfect_detector(boxes, cfg.max_detections)
    sample = {"image": torch.zeros(3, 160, 160), "boxes": boxes, "labels": torch.zeros(DENSE_N, dtype=torch.long)}
    return _evaluate(model, [sample], cfg, ["tree"], lambda s, where: s), model, cfg


@pytest.fixture
def tiny_probe_backbone(monkeypatch) -> None:
    """The probe runner loads every backbone spec as TinyBackbone(spec='tiny'): suites run with no checkpoint read."""
    from geodino.eval import runner
    from tests.eval.tiny_backbone import TinyBackbone

    monkeypatch.setattr(runner, "load_probe_backbone", lambda *a: TinyBackbone(spec="tiny"))


@pytest.fixture
def fail_tasks(monkeypatch):
    """A call that makes every probe task from then on raise RuntimeError('task failed') (runner._call_task): a
    run that fails in its first task, after an earlier run in the same --out."""

    def start() -> None:
        from geodino.eval import runner

        def fail(*a, **k):
            raise RuntimeError("task failed")

        monkeypatch.setattr(runner, "_call_task", fail)

    return start


@pytest.fixture
def broken_specs(spec_backbones, monkeypatch) -> set[str]:
    """`spec_backbones`, but a spec put in the returned set fails to load from then on with CheckpointError
    'checkpoint <spec> cannot be read': a comparison backbone whose checkpoint is unreadable."""
    from geodino.errors import CheckpointError
    from geodino.eval import runner
    from tests.eval.tiny_backbone import TinyBackbone

    broken: set[str] = set()

    def load(spec, bands, sensor, device):
        if spec in broken:
            raise CheckpointError(f"checkpoint {spec} cannot be read")
        return TinyBackbone(spec=spec)

    monkeypatch.setattr(runner, "load_probe_backbone", load)
    return broken


def write_dn(path: Path, dn, georef: bool = False) -> None:
    """Write [C,H,W] DN array `dn` as a GeoTIFF of its dtype: no CRS (a file of raw DN, GDAL's not-georeferenced
    warning silenced), or with `georef` 1 m pixels in EPSG:32611."""
    import warnings

    import rasterio
    from rasterio.crs import CRS
    from rasterio.transform import from_origin

    profile = {"driver": "GTiff", "width": dn.shape[2], "height": dn.shape[1], "count": dn.shape[0]}
    if georef:
        profile.update(crs=CRS.from_epsg(32611), transform=from_origin(500000.0, 4100000.0, 1.0, 1.0))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # not georeferenced
        with rasterio.open(path, "w", dtype=dn.dtype, **profile) as dst:
            dst.write(dn)


def read_dn(path: Path):
    """The [C,H,W] DN array of a `write_dn` file as stored (rasterio's not-georeferenced warning silenced, as on
    writing it)."""
    import warnings

    import rasterio
    from rasterio.errors import NotGeoreferencedWarning

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", NotGeoreferencedWarning)
        with rasterio.open(path) as src:
            return src.read()


def canopy_dpt_cfg(tmp_path: Path, **fields):
    """A CanopyProbeConfig of a short DPT canopy run on tmp_path/a.tif with its CHM paired by name from the folder
    tmp_path: one epoch, the four last layers, 16 fusion channels; `fields` set the rest (crop, blocks, output)."""
    from geodino.eval.canopy import CanopyProbeConfig

    return CanopyProbeConfig(
        train_images=[str(tmp_path / "a.tif")],
        train_chms=[str(tmp_path)],  # a folder: paired by name
        epochs=1,
        min_steps=1,  # a short head meant: an explicit min_steps keeps it from warning
        layers="four_last",
        dpt_channels=16,
        **fields,
    )
