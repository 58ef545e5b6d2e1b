"""Canopy-height probe: CHM co-registration on offset grids, nodata, training, GeoTIFF output."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import rasterio
from rasterio.crs import CRS
from rasterio.transform import from_origin

from geodino.errors import InputError
from geodino.eval.canopy import CanopyProbeConfig, load_chm_pair, run_canopy, warn_degenerate_tree_iou
from geodino.eval.metrics import RegressionMeter
from tests.eval.conftest import canopy_dpt_cfg
from tests.eval.dense_backbone import assert_unchanged, snapshot, tiny_backbone

CRS_UTM = CRS.from_epsg(32611)
X0, Y0 = 500000.0, 4100000.0


def ramp(x, y):
    """A canopy height that is linear in map coordinates (bilinear resampling reproduces it exactly)."""
    return 0.05 * (x - X0) + 0.02 * (Y0 - y) + 1.0


def write_image(path, size=64, res=0.5, seed=0, bands=3, nodata=None):
    rng = np.random.default_rng(seed)
    data = rng.integers(0, 255, (bands, size, size), dtype=np.uint8)
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=bands,
        dtype="uint8",
        crs=CRS_UTM,
        transform=from_origin(X0, Y0, res, res),
        nodata=nodata,
    ) as dst:
        dst.write(data)
    return data


def write_chm(path, size=20, res=2.0, offset=0.4, nodata=-9999.0, fill=None):
    """A CHM whose grid is offset by `offset` m from the image grid (as the NEON sample)."""
    x0, y0 = X0 + offset, Y0 + offset
    cols, rows = np.meshgrid(np.arange(size), np.arange(size))
    h = ramp(x0 + (cols + 0.5) * res, y0 - (rows + 0.5) * res).astype(np.float32)
    if fill is not None:
        h[:] = fill
    with rasterio.open(
        path,
        "w",
        driver="GTiff",
        width=size,
        height=size,
        count=1,
        dtype="float32",
        crs=CRS_UTM,
        transform=from_origin(x0, y0, res, res),
        nodata=nodata,
    ) as dst:
        dst.write(h, 1)
    return h


def test_chm_is_resampled_onto_the_image_grid_by_bounds(tmp_path):
    write_image(tmp_path / "a.tif")
    write_chm(tmp_path / "a_CHM.tif")
    s = load_chm_pair(tmp_path / "a.tif", tmp_path / "a_CHM.tif", CanopyProbeConfig())
    assert s["target"].shape == (64, 64)
    # image pixel (row 10, col 20) has its centre at x0 + 10.25 m, y0 - 5.25 m; the CHM ramp gives the height there
    assert s["target"][10, 20].item() == pytest.approx(ramp(X0 + 10.25, Y0 - 5.25), abs=1e-3)
    assert s["target"][40, 33].item() == pytest.approx(ramp(X0 + 16.75, Y0 - 20.25), abs=1e-3)
    # the CHM grid starts 0.4 m east of the image: the first image column has no CHM value and is invalid
    assert not s["valid"][:, 0].any()
    assert s["valid"][5:60, 5:60].all()
    assert s["crs"] == CRS_UTM and s["transform"] == from_origin(X0, Y0, 0.5, 0.5)


def test_chm_nodata_becomes_invalid(tmp_path):
    write_image(tmp_path / "a.tif")
    h = write_chm(tmp_path / "a_CHM.tif")
    with rasterio.open(tmp_path / "a_CHM.tif", "r+") as dst:
        h[5:10, 5:10] = -9999.0
        dst.write(h, 1)
    s = load_chm_pair(tmp_path / "a.tif", tmp_path / "a_CHM.tif", CanopyProbeConfig(resampling="nearest"))
    # CHM cells (5..9) cover image pixels of x in [10.4, 20.4) m, i.e. columns 21..40
    assert not s["valid"][25, 25].item() and s["valid"][50, 50].item()


def test_all_nodata_chm_is_refused(tmp_path):
    write_image(tmp_path / "a.tif")
    write_chm(tmp_path / "a_CHM.tif", fill=-9999.0)
    with pytest.raises(InputError, match=r"CHM .*a_CHM.tif has no valid height on the grid of image .*a.tif"):
        load_chm_pair(tmp_path / "a.tif", tmp_path / "a_CHM.tif", CanopyProbeConfig())


def test_chm_outside_the_image_is_refused(tmp_path):
    write_image(tmp_path / "a.tif")
    with rasterio.open(
        tmp_path / "far.tif",
        "w",
        driver="GTiff",
        width=4,
        height=4,
        count=1,
        dtype="float32",
        crs=CRS_UTM,
        transform=from_origin(X0 + 1000, Y0, 1, 1),
    ) as dst:
        dst.write(np.ones((1, 4, 4), np.float32))
    with pytest.raises(InputError, match="does not overlap image"):
        load_chm_pair(tmp_path / "a.tif", tmp_path / "far.tif", CanopyProbeConfig())


def test_band_mismatch_suggests_band_adaptation(tmp_path):
    write_image(tmp_path / "a.tif", bands=4)
    write_chm(tmp_path / "a_CHM.tif")
    cfg = CanopyProbeConfig(train_images=[str(tmp_path / "a.tif")], train_chms=[str(tmp_path / "a_CHM.tif")])
    with pytest.raises(InputError, match=r"4 bands but backbone .* expects 3; .*bands=4"):
        run_canopy(tiny_backbone(), cfg, tmp_path / "out")


# a head of a few steps predicts every pixel above the 2 m tree threshold: its degenerate-tree_IoU warning is
# expected here (test_canopy_metrics_json_flags_a_degenerate_tree_iou asserts it)
@pytest.mark.filterwarnings("ignore:canopy probe. every predicted pixel:UserWarning")
def test_dpt_canopy_probe_end_to_end(tmp_path):
    bb = tiny_backbone()
    before = snapshot(bb)
    write_image(tmp_path / "a.tif", nodata=None)
    write_chm(tmp_path / "a_CHM.tif")
    cfg = canopy_dpt_cfg(
        tmp_path, crop_size=32, stride=32, batch_size=3, block_size=10, block_border=3, output="mixlog", n_bins=32
    )
    metrics = run_canopy(bb, cfg, tmp_path / "out")
    assert {"MAE", "RMSE", "R2", "bias", "block_R2", "nMAE", "tree_IoU"} <= metrics.keys()
    assert np.isfinite(metrics["MAE"]) and np.isfinite(metrics["block_R2"])
    assert metrics["val_tiles"] == 1.0  # 4 non-overlapping 32 px tiles, a quarter held out
    with rasterio.open(tmp_path / "out" / "a_height.tif") as src, rasterio.open(tmp_path / "a.tif") as ref:
        assert src.crs == ref.crs and src.transform == ref.transform and src.shape == ref.shape
        heights = src.read(1)
        assert src.dtypes[0] == "float32" and np.all(heights >= 0.0) and np.all(heights <= 96.0)
    for name in ("canopy_scatter.png", "canopy_maps.png", "canopy_metrics.json", "canopy_head.pt"):
        assert (tmp_path / "out" / name).stat().st_size > 0
    assert not list((tmp_path / "out").glob(".*tmp*"))  # atomic writes left no temporary file
    assert_unchanged(bb, before)


# a head of a few steps predicts every pixel above the 2 m tree threshold: its degenerate-tree_IoU warning is
# expected here (test_canopy_metrics_json_flags_a_degenerate_tree_iou asserts it)
@pytest.mark.filterwarnings("ignore:canopy probe. every predicted pixel:UserWarning")
def test_same_seed_gives_the_same_head_whatever_drew_random_numbers_before(tmp_path):
    """The head is built after re-seeding: its weights and metrics depend on `seed` alone (the global torch RNG
    state left by earlier work, e.g. loading a backbone or another probe, must not leak into them)."""
    import torch

    write_image(tmp_path / "a.tif")
    write_chm(tmp_path / "a_CHM.tif")
    cfg = CanopyProbeConfig(
        train_images=[str(tmp_path / "a.tif")],
        train_chms=[str(tmp_path / "a_CHM.tif")],
        head="linear",
        crop_size=32,
        epochs=1,
        min_steps=1,
        n_bins=16,
    )
    runs = []
    for i, before in enumerate((1, 2)):
        torch.manual_seed(before)
        metrics = run_canopy(tiny_backbone(), cfg, tmp_path / f"out{i}")
        runs.append((metrics, torch.load(tmp_path / f"out{i}" / "canopy_head.pt", weights_only=False)["state_dict"]))
    (m0, s0), (m1, s1) = runs
    assert m0 == m1
    assert all(torch.equal(s0[k], s1[k]) for k in s0)


def test_a_chm_with_several_bands_is_refused_naming_the_file(tmp_path):
    """An RGB image given as the height model (SJER_052.tif as a CHM) must not train: MAE 124 m, tree IoU 1.0."""
    write_image(tmp_path / "a.tif")
    write_image(tmp_path / "rgb.tif", size=32, res=1.0)
    with pytest.raises(InputError, match=r"^CHM .*rgb.tif has 3 bands; a canopy height model is one band"):
        load_chm_pair(tmp_path / "a.tif", tmp_path / "rgb.tif", CanopyProbeConfig())


def test_heights_above_max_height_warn_once_naming_the_file_and_the_max(tmp_path):
    write_image(tmp_path / "a.tif")
    write_chm(tmp_path / "a_CHM.tif", fill=150.0)  # centimetres or a wrong file: beyond the bins' 96 m
    with pytest.warns(UserWarning) as caught:
        load_chm_pair(tmp_path / "a.tif", tmp_path / "a_CHM.tif", CanopyProbeConfig())
    msgs = [str(w.message) for w in caught if "max_height" in str(w.message)]
    assert len(msgs) == 1
    assert "a_CHM.tif" in msgs[0] and "above max_height=96 m (up to 150.0 m)" in msgs[0]
    write_chm(tmp_path / "a_CHM.tif")  # heights within the bins: no warning
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        load_chm_pair(tmp_path / "a.tif", tmp_path / "a_CHM.tif", CanopyProbeConfig())


def test_a_tree_iou_that_cannot_tell_models_apart_warns_once_naming_threshold_share_and_cover():
    import torch

    y = torch.tensor([[0.0, 1.0, 2.5, 10.0, 0.0]], dtype=torch.float64)  # 2 of 5 reference pixels are trees
    meter = RegressionMeter(tree_threshold=2.0)
    meter.update(torch.full((1, 5), 7.0, dtype=torch.float64), y)  # every predicted pixel is a tree
    iou = meter.compute()["tree_IoU"]
    assert iou == pytest.approx(0.4)  # the reference's cover fraction, 2 / 5
    with pytest.warns(UserWarning) as caught:
        assert warn_degenerate_tree_iou(iou, meter.tree_cover(), 2.0)
    msgs = [str(w.message) for w in caught]
    assert msgs == [
        "canopy probe: every predicted pixel (100%) is >= tree_threshold=2 m, so tree_IoU=0.4 equals the "
        "reference's tree-cover fraction (0.4) whatever the backbone (tree_IoU_degenerate in canopy_metrics.json); "
        "compare backbones by MAE, RMSE and R2, or check the head (min_height, epochs)"
    ]
    low = RegressionMeter(tree_threshold=2.0)
    low.update(torch.full((1, 5), 1.0, dtype=torch.float64), y)
    none = r"no predicted pixel \(0%\) is >= tree_threshold=2 m, so tree_IoU is 0 \(reference tree cover 0.4\)"
    with pytest.warns(UserWarning, match=none):
        assert warn_degenerate_tree_iou(low.compute()["tree_IoU"], low.tree_cover(), 2.0)
    mixed = RegressionMeter(tree_threshold=2.0)
    mixed.update(torch.tensor([[0.0, 3.0, 3.0, 1.0, 0.0]], dtype=torch.float64), y)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert not warn_degenerate_tree_iou(mixed.compute()["tree_IoU"], mixed.tree_cover(), 2.0)


def test_canopy_metrics_json_flags_a_degenerate_tree_iou(tmp_path):
    """Bins starting at 3 m cannot predict a height below the 2 m tree threshold: every pixel is a tree."""
    import json

    write_image(tmp_path / "a.tif")
    write_chm(tmp_path / "a_CHM.tif")  # 1 .. ~3.6 m: part of the reference is below 2 m
    cfg = CanopyProbeConfig(
        train_images=[str(tmp_path / "a.tif")],
        train_chms=[str(tmp_path / "a_CHM.tif")],
        head="linear",
        crop_size=32,
        epochs=1,
        min_steps=1,
        n_bins=16,
        min_height=3.0,
        progress=False,
    )
    with pytest.warns(UserWarning, match=r"every predicted pixel \(100%\) is >= tree_threshold=2 m"):
        metrics = run_canopy(tiny_backbone(), cfg, tmp_path / "out")
    saved = json.loads((tmp_path / "out" / "canopy_metrics.json").read_text())
    assert saved["tree_IoU_degenerate"] is True and saved["tree_cover_pred"] == 1.0
    assert 0 < saved["tree_cover_ref"] < 1 and saved["tree_IoU"] == pytest.approx(saved["tree_cover_ref"])
    assert "tree_IoU_degenerate" not in metrics  # not a score row of the suite's results table


@pytest.mark.filterwarnings("ignore:canopy probe. every predicted pixel:UserWarning")
@pytest.mark.parametrize("fails", [False, True])
def test_disk_feature_cache_is_removed_after_the_head_trains_or_fails(tmp_path, monkeypatch, fails):
    """`cache_features: disk` chunks are read by no later run: gone once the head is trained, and when it fails."""
    import functools

    import geodino.eval.canopy as canopy

    real_train = canopy.train_head
    seen: list[str] = []

    @functools.wraps(real_train)  # options_for reads the signature of train_head
    def train(model, store, loss_fn, **options):
        seen.extend(p.name for p in (tmp_path / "out" / "feature_cache").iterdir())  # the features are on disk now
        if fails:
            raise RuntimeError("head training failed")
        return real_train(model, store, loss_fn, **options)

    monkeypatch.setattr(canopy, "train_head", train)
    write_image(tmp_path / "a.tif")
    write_chm(tmp_path / "a_CHM.tif")
    cfg = canopy_dpt_cfg(tmp_path, crop_size=32, stride=32, batch_size=3, cache_features="disk")
    if fails:
        with pytest.raises(RuntimeError, match="head training failed"):
            run_canopy(tiny_backbone(), cfg, tmp_path / "out")
    else:
        run_canopy(tiny_backbone(), cfg, tmp_path / "out")
    assert any(name.endswith(".npy") for name in seen)  # the run did go through disk chunks
    assert not (tmp_path / "out" / "feature_cache").exists()


@pytest.mark.filterwarnings("ignore:canopy probe. every predicted pixel:UserWarning")
@pytest.mark.filterwarnings("ignore:canopy validation raster .* overlaps training raster:UserWarning")  # same ground
def test_validation_rasters_are_counted_as_val_images_not_a_nan_val_tiles(tmp_path):
    """With val_images the scored set is rasters: `val_images` counts them (a `val_tiles nan` row said nothing)."""
    write_image(tmp_path / "a.tif")
    write_chm(tmp_path / "a_CHM.tif")
    (tmp_path / "val").mkdir()
    write_image(tmp_path / "val" / "b.tif", seed=1)
    write_chm(tmp_path / "val" / "b_CHM.tif")
    cfg = canopy_dpt_cfg(
        tmp_path,
        crop_size=32,
        stride=32,
        batch_size=3,
        val_images=[str(tmp_path / "val" / "b.tif")],
        val_chms=[str(tmp_path / "val")],
    )
    metrics = run_canopy(tiny_backbone(), cfg, tmp_path / "out")
    assert metrics["val_images"] == 1.0 and "val_tiles" not in metrics
