"""SSL loader: batch layout, resume = uninterrupted, ranks disjoint, workers agree, mixing proportions."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from geodino.data.crops import CropsConfig, CropSet
from geodino.data.loaders import DataConfig, SourceConfig, build_ssl_loader
from geodino.data.mixing import SourceMixer
from geodino.errors import ConfigError

from .conftest import ramp, write_tif

CROPS = CropsConfig(global_size=32, local_size=16, n_local=2, gram=True)


@pytest.fixture
def cfg(tmp_path):
    for i, crs in enumerate(["EPSG:32633", "EPSG:32632"]):
        write_tif(tmp_path / f"s{i}.tif", ramp(3, 90, 100, dtype="uint8", seed=i), crs=crs, nodata=None)
    return DataConfig(sources=[SourceConfig(type="raster", paths=[str(tmp_path)], sensor="sat493m", tile_size=48)])


def _take(loader, n):
    out = []
    for b in loader:
        out.append(b)
        if len(out) == n:
            break
    return out


def test_batch_layout(cfg):
    (b,) = _take(build_ssl_loader(cfg, CROPS, batch_size=3, num_workers=0, seed=0, patch_size=8), 1)
    assert b["global_crops"].shape == (6, 3, 32, 32)
    assert b["local_crops"].shape == (6, 3, 16, 16)
    assert b["gram_crops"].shape == (6, 3, 64, 64)
    assert b["masks"].shape == (6, 16) and b["masks"].dtype == torch.bool
    assert b["mask_indices"].dtype == torch.long and b["n_masked_patches"].item() == b["masks"].sum().item()
    assert b["masks_weight"].shape == b["mask_indices"].shape
    assert b["step"] == 0 and b["source"] == "source0" and isinstance(b["upperbound"], int)


def test_in_process_loading_runs_single_threaded_and_restores_threads(cfg, monkeypatch):
    """num_workers 0: augmentation runs with 1 intra-op thread; the training process gets its threads back."""
    from geodino.data import crops

    seen = []
    real = crops.MultiCropTransform.__call__

    def spy(self, *a, **k):
        seen.append(torch.get_num_threads())
        return real(self, *a, **k)

    real_finish = crops.MultiCropTransform.finish

    def spy_finish(self, *a, **k):
        seen.append(("finish", torch.get_num_threads()))
        return real_finish(self, *a, **k)

    monkeypatch.setattr(crops.MultiCropTransform, "__call__", spy)
    monkeypatch.setattr(crops.MultiCropTransform, "finish", spy_finish)
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    try:
        (b,) = _take(build_ssl_loader(cfg, CROPS, batch_size=2, num_workers=0, seed=0, patch_size=8), 1)
        assert b["global_crops"].shape[0] == 4 and torch.get_num_threads() == 2
        assert seen == [1, 1, ("finish", 1), ("finish", 1)]  # two samples, then the batched colour step
    finally:
        torch.set_num_threads(before)


def test_resume_reads_what_uninterrupted_run_read(cfg):
    full = _take(build_ssl_loader(cfg, CROPS, batch_size=2, num_workers=0, seed=4, patch_size=8), 5)
    resumed = _take(build_ssl_loader(cfg, CROPS, batch_size=2, num_workers=0, seed=4, patch_size=8, start_step=3), 2)
    for a, b in zip(full[3:], resumed):
        assert a["step"] == b["step"]
        for k in ("global_crops", "local_crops", "gram_crops", "masks", "mask_indices"):
            assert torch.equal(a[k], b[k]), k
    other = _take(build_ssl_loader(cfg, CROPS, batch_size=2, num_workers=0, seed=5, patch_size=8), 1)
    assert not torch.equal(other[0]["global_crops"], full[0]["global_crops"])


def test_ranks_read_disjoint_samples_and_match_single_process(cfg):
    """Rank r of 2 reads indices s*B*2 + r*B + [0, B): a 1-rank run with batch 2B sees the same tiles."""
    b0 = _take(build_ssl_loader(cfg, CROPS, batch_size=2, num_workers=0, seed=1, rank=0, world_size=2, patch_size=8), 1)
    b1 = _take(build_ssl_loader(cfg, CROPS, batch_size=2, num_workers=0, seed=1, rank=1, world_size=2, patch_size=8), 1)
    one = _take(build_ssl_loader(cfg, CROPS, batch_size=4, num_workers=0, seed=1, patch_size=8), 1)
    g0, g1, g = b0[0]["gram_crops"], b1[0]["gram_crops"], one[0]["gram_crops"]
    # crop-major: [img0c0, img1c0, (img2c0, img3c0), img0c1, ...]
    assert torch.equal(g[:2], g0[:2]) and torch.equal(g[2:4], g1[:2])
    assert not torch.equal(g0[:2], g1[:2])


@pytest.mark.slow
def test_workers_give_the_same_batches(cfg):
    a = _take(build_ssl_loader(cfg, CROPS, batch_size=2, num_workers=0, seed=2, patch_size=8), 3)
    b = _take(build_ssl_loader(cfg, CROPS, batch_size=2, num_workers=2, seed=2, patch_size=8), 3)
    for x, y in zip(a, b):
        assert torch.equal(x["global_crops"], y["global_crops"]) and torch.equal(x["masks"], y["masks"])


def test_mixing_homogeneous_batches_and_proportions(cfg, tmp_path):
    src2 = SourceConfig(
        type="raster", name="curated", paths=[str(tmp_path / "s1.tif")], sensor="sat493m", tile_size=48, weight=0.25
    )
    cfg.sources[0].weight = 0.75
    cfg.sources.append(src2)
    mixer = SourceMixer(["source0", "curated"], [0.75, 0.25], seed=0)
    counts = mixer.counts(0, 4000)
    assert abs(counts["curated"] / 4000 - 0.25) < 0.03
    loader = build_ssl_loader(cfg, CROPS, batch_size=1, num_workers=0, seed=0, patch_size=8, max_steps=12)
    sources = [b["source"] for b in loader]
    assert sources == [mixer.names[mixer.source_for_step(s)] for s in range(12)]
    assert len(set(sources)) == 2


def test_multi_resolution_sets_per_step(cfg):
    crops = CropsConfig(n_local=1, crop_sets=[CropSet(32, 16, None, 0.5), CropSet(48, 16, 96, 0.5)])
    loader = build_ssl_loader(cfg, crops, batch_size=1, num_workers=0, seed=0, patch_size=16, max_steps=6)
    batches = list(loader)
    assert {b["global_crops"].shape[-1]: ("gram_crops" in b) for b in batches} == {32: False, 48: True}
    assert all(b["masks"].shape[1] == (b["global_crops"].shape[-1] // 16) ** 2 for b in batches)


def test_keyword_form_and_mask_override(tmp_path):
    write_tif(tmp_path / "a.tif", ramp(3, 64, 64, dtype="uint8"), nodata=None)
    loader = build_ssl_loader(
        [str(tmp_path)],
        kind="auto",
        sensor="rgb",
        batch_size=2,
        global_crops_size=32,
        local_crops_size=16,
        local_crops_number=2,
        patch_size=8,
        mask_ratio=(0.5, 0.5),
        tile_size=48,
        mask_probability=1.0,
        num_workers=0,
    )
    (b,) = _take(loader, 1)
    assert b["masks"].sum(1).tolist() == [8, 8, 8, 8]  # every crop masked at exactly half of 16 patches


def test_config_errors(cfg):
    with pytest.raises(ConfigError, match=r"data.sources is empty"):
        build_ssl_loader(DataConfig(), CROPS, batch_size=1)
    with pytest.raises(ConfigError, match="not a multiple of the patch size 16"):
        build_ssl_loader(cfg, CropsConfig(global_size=40), batch_size=1)
    cfg.sources[0].type = "hdf"
    with pytest.raises(ConfigError, match=r"type='hdf'; use raster, cube, images, tar, torchgeo or synthetic"):
        build_ssl_loader(cfg, CROPS, batch_size=1)


def test_data_config_from_yaml(tmp_path):
    from geodino.config import load_config

    y = tmp_path / "data.yaml"
    y.write_text(
        "sources:\n  - {type: raster, paths: [a/], sensor: sentinel2_l2a, bands: [B04, B03, B02], weight: 0.9}\n"
        "  - {type: images, name: web, paths: [b/], weight: 0.1}\nnorm_sensor: sat493m\n"
    )
    cfg = load_config(DataConfig, y)
    assert cfg.sources[0].bands == ["B04", "B03", "B02"] and cfg.sources[1].type == "images"
    assert np.isclose(sum(s.weight for s in cfg.sources), 1.0)


def test_synthetic_source_runs_the_pipeline():
    cfg = DataConfig(sources=[SourceConfig(type="synthetic", sensor="sentinel2_l2a", tile_size=64)])
    (b,) = _take(build_ssl_loader(cfg, CROPS, batch_size=2, num_workers=0, seed=0, patch_size=8), 1)
    assert b["global_crops"].shape == (4, 12, 32, 32) and torch.isfinite(b["global_crops"]).all()
    (again,) = _take(build_ssl_loader(cfg, CROPS, batch_size=2, num_workers=0, seed=0, patch_size=8), 1)
    assert torch.equal(b["global_crops"], again["global_crops"])
    assert 0.3 < b["global_crops"].std().item() < 3.0  # roughly standardised


def test_photometric_on_device_equals_in_loader(cfg):
    """crops.photometric=device: the loader hands over raw crops + drawn parameters; finishing them later (as
    SSLModule does on the accelerator) gives the loader-mode batch exactly. Bad values fail in one line."""
    import dataclasses

    from geodino.data.collate import crops_on, finish_photometric

    crops = dataclasses.replace(CROPS, jitter_prob=1.0, grayscale_prob=0.5, solarize_prob=0.5)
    (ref,) = _take(build_ssl_loader(cfg, crops, batch_size=3, num_workers=0, seed=2, patch_size=8), 1)
    dev = dataclasses.replace(crops, photometric="device")
    (raw,) = _take(build_ssl_loader(cfg, dev, batch_size=3, num_workers=0, seed=2, patch_size=8), 1)
    assert "photometric" not in ref and "global_params" not in ref
    assert raw["global_params"].shape == (6, 12) and raw["local_params"].shape == (6, 12)
    assert raw["global_crops"].amin() > -0.1 and raw["global_crops"].amax() < 1.1  # reflectance, not standardised
    moved = crops_on(raw, "cpu")
    done = finish_photometric(raw)
    assert "photometric" not in done and "global_params" not in done
    for k in ("global_crops", "local_crops"):
        assert torch.equal(done[k], ref[k]), k
        assert torch.equal(moved[k], ref[k]), k
    assert torch.equal(done["gram_crops"], ref["gram_crops"])
    with pytest.raises(ConfigError, match=r"crops\.photometric must be 'auto', 'loader' or 'device', got 'gpu'"):
        dataclasses.replace(crops, photometric="gpu").validate()


def test_photometric_auto_is_device_on_cuda_only():
    from geodino.data.config import resolve_photometric

    auto = CropsConfig()
    assert auto.photometric == "auto"
    assert resolve_photometric(auto, on_cuda=True).photometric == "device"
    assert resolve_photometric(auto, on_cuda=False).photometric == "loader"
    for fixed in ("loader", "device"):  # an explicit choice is kept on any hardware
        c = CropsConfig(photometric=fixed)
        assert resolve_photometric(c, True).photometric == resolve_photometric(c, False).photometric == fixed


def test_an_archive_that_is_nodata_everywhere_stops_with_one_line(tmp_path):
    """A raster whose every pixel is its nodata value trained on fill colour without a word; one valid corner is
    enough to pass."""
    from geodino.data.loaders import build_sources, check_sources_have_pixels
    from geodino.errors import InputError

    (tmp_path / "blank").mkdir()
    blank = write_tif(tmp_path / "blank" / "empty.tif", np.zeros((3, 64, 64), np.uint8), nodata=0)
    cfg = DataConfig(sources=[SourceConfig(type="raster", paths=[str(blank.parent)], sensor="sat493m", tile_size=32)])
    with pytest.raises(InputError, match=r"source 'source0' \(.*empty.tif\): 16 sampled tiles hold no valid pixel"):
        check_sources_have_pixels(build_sources(cfg, progress=False), seed=0)
    corner = np.zeros((3, 64, 64), np.uint8)
    corner[:, :8, :8] = 90
    write_tif(tmp_path / "blank" / "empty.tif", corner, nodata=0)
    check_sources_have_pixels(build_sources(cfg, progress=False), seed=0)


def test_pinned_batches_on_cuda_only(cfg, monkeypatch):
    """The trainers ask for page-locked batches when they train on a CUDA GPU (asynchronous host-to-GPU copies of
    the crops), never on a CPU; the loader passes the request to its DataLoader."""
    from geodino.train.pretrain import PretrainConfig
    from geodino.train.pretrain_build import loader_factory

    assert build_ssl_loader(cfg, CROPS, batch_size=3, num_workers=0, patch_size=8, pin_memory=True).pin_memory
    assert not build_ssl_loader(cfg, CROPS, batch_size=3, num_workers=0, patch_size=8).pin_memory
    pre = PretrainConfig()
    for accelerator, pinned in (("cuda", True), ("gpu", True), ("cpu", False)):
        pre.trainer.accelerator = accelerator
        assert loader_factory(pre).keywords["pin_memory"] is pinned
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    pre.trainer.accelerator = "auto"
    assert loader_factory(pre).keywords["pin_memory"] is True


def test_distillation_pins_batches_on_cuda_only(monkeypatch):
    import geodino.data.loaders as loaders
    import geodino.train.distill.build as build
    from geodino.train.distill.config import DistillConfig

    seen: list[bool] = []
    monkeypatch.setattr(loaders, "build_ssl_loader", lambda *a, **kw: seen.append(kw["pin_memory"]))
    for device in ("cuda", "cpu"):
        monkeypatch.setattr(build, "pick_device", lambda cfg, d=device: torch.device(d))
        build.make_loader(DistillConfig(), 16, 0, 0, 1, 4)
    assert seen == [True, False]
