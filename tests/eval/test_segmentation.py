"""Segmentation probe: sliding windows, training on a frozen backbone, image/mask folders and bad input."""

from __future__ import annotations

import json
import time

import numpy as np
import pytest
import rasterio
import torch
from PIL import Image
from rasterio.transform import from_origin

from geodino.cli import main
from geodino.errors import InputError
from geodino.eval import dense
from geodino.eval.heads import LinearHead
from geodino.eval.segmentation import SegmentationProbeConfig, run_segmentation
from tests.eval.dense_backbone import assert_unchanged, snapshot, tiny_backbone


def make_folder(root, n=4, size=48, patch=8, seed=0, classes=2):
    """Images whose patch-aligned blocks are dark (class 0) or bright (class 1); masks named <stem>_mask.png."""
    rng = np.random.default_rng(seed)
    (root / "img").mkdir(parents=True)
    (root / "msk").mkdir()
    for i in range(n):
        blocks = rng.integers(0, classes, (size // patch, size // patch)).astype(np.uint8)
        mask = blocks.repeat(patch, 0).repeat(patch, 1)
        img = np.stack([mask * 180 + 30, mask * 120 + 60, 200 - mask * 150], -1).astype(np.uint8)
        Image.fromarray(img).save(root / "img" / f"s{i}.png")
        Image.fromarray(mask).save(root / "msk" / f"s{i}_mask.png")
    return root / "img", root / "msk"


def test_window_starts_cover_the_image_evenly():
    assert dense.window_starts(32, 32, 21) == [0]
    assert dense.window_starts(20, 32, 21) == [0]
    assert dense.window_starts(100, 32, 21) == [0, 17, 34, 51, 68]  # linspace(0, 68, 5): last flush with the edge
    assert dense.tile_grid(40, 64, 32) == [(0, 0), (0, 32), (8, 0), (8, 32)]


def test_sliding_window_equals_whole_image_where_the_image_fits():
    bb = tiny_backbone()
    torch.manual_seed(0)
    head = LinearHead([bb.embed_dim], 3).eval()
    predict = dense.head_predict(bb, head, "last")
    for size in ((32, 32), (40, 36)):  # one window; the second is not a multiple of the patch size
        image = torch.rand(3, *size)
        assert torch.equal(dense.sliding_window(predict, image, crop=48, stride=32), predict(image[None])[0])


def test_sliding_window_stitches_and_averages_overlaps():
    # a pointwise predictor is translation-equivariant: stitched windows must equal the whole-image result
    torch.manual_seed(0)
    conv = torch.nn.Conv2d(3, 4, 1)
    image = torch.rand(3, 50, 70)
    with torch.no_grad():
        whole = conv(image[None])[0]
        slid = dense.sliding_window(lambda x: conv(x), image, crop=32, stride=20, batch_size=3)
    assert torch.allclose(slid, whole, atol=1e-6)


def test_linear_probe_learns_and_leaves_the_backbone_unchanged(tmp_path):
    bb = tiny_backbone()
    before = snapshot(bb)
    img, msk = make_folder(tmp_path, n=5)
    cfg = SegmentationProbeConfig(
        train_images=str(img),
        train_masks=str(msk),
        num_classes=2,
        class_names=["dark", "bright"],
        head="linear",
        crop_size=32,
        epochs=15,
        min_steps=1,
        batch_size=8,
        lr=1e-2,
        plots=1,
    )
    t0 = time.perf_counter()
    metrics = run_segmentation(bb, cfg, tmp_path / "out")
    print("linear probe", time.perf_counter() - t0)
    assert metrics["mIoU"] > 0.7, metrics
    assert {"mIoU", "pixel_acc", "mAcc", "IoU/dark", "IoU/bright"} <= metrics.keys()
    assert json.loads((tmp_path / "out" / "segmentation_metrics.json").read_text())["mIoU"] == metrics["mIoU"]
    assert (tmp_path / "out" / "segmentation_examples.png").stat().st_size > 0
    assert_unchanged(bb, before)


def chunk_writes(monkeypatch) -> list[str]:
    """The names of the chunk files the disk feature cache writes (filled as the probe runs)."""
    written: list[str] = []
    real = dense.FeatureStore._write_mapped
    monkeypatch.setattr(
        dense.FeatureStore, "_write_mapped", lambda self, f, a: written.append(f.name) or real(self, f, a)
    )
    return written


def test_upernet_on_four_layers_with_disk_cache(tmp_path, monkeypatch):
    written = chunk_writes(monkeypatch)
    bb = tiny_backbone()
    img, msk = make_folder(tmp_path, n=3, size=32)
    cfg = SegmentationProbeConfig(
        train_images=str(img),
        train_masks=str(msk),
        num_classes=2,
        head="upernet",
        channels=16,
        crop_size=32,
        epochs=1,
        min_steps=1,
        batch_size=4,
        cache_features="disk",
        plots=0,
    )
    metrics = run_segmentation(bb, cfg, tmp_path / "out")
    assert 0.0 <= metrics["pixel_acc"] <= 1.0
    assert sorted(written)[0] == "cls0_000000.npy"  # the features went through disk chunks
    # ... which no later run reads: removed once the head is trained (they were left, as large as all features)
    assert not (tmp_path / "out" / "feature_cache").exists()


def test_disk_feature_cache_is_removed_when_the_head_training_fails(tmp_path, monkeypatch):
    """A failed head training still removes the `disk` chunks: the next run extracts its features afresh."""
    import geodino.eval.segmentation as segmentation

    def failing(*args, **kwargs):
        raise RuntimeError("head training failed")

    monkeypatch.setattr(segmentation, "train_head", failing)
    written = chunk_writes(monkeypatch)
    img, msk = make_folder(tmp_path, n=3, size=32)
    cfg = SegmentationProbeConfig(
        train_images=str(img),
        train_masks=str(msk),
        num_classes=2,
        crop_size=32,
        epochs=1,
        min_steps=1,
        batch_size=4,
        cache_features="disk",
        plots=0,
    )
    with pytest.raises(RuntimeError, match="head training failed"):
        run_segmentation(tiny_backbone(), cfg, tmp_path / "out")
    assert written  # the features went through disk chunks
    assert not (tmp_path / "out" / "feature_cache").exists()


def test_mask_and_image_sizes_must_match(tmp_path):
    img, msk = make_folder(tmp_path, n=2, size=32)
    Image.fromarray(np.zeros((24, 32), np.uint8)).save(msk / "s1_mask.png")
    cfg = SegmentationProbeConfig(train_images=str(img), train_masks=str(msk), num_classes=2, epochs=1, min_steps=1)
    with pytest.raises(InputError, match=r"mask .*s1_mask.png is 32x24 px but image .*s1.png is 32x32 px"):
        run_segmentation(tiny_backbone(), cfg, tmp_path / "out")


def test_labels_beyond_num_classes_are_refused(tmp_path):
    img, msk = make_folder(tmp_path, n=2, size=32, classes=3)
    cfg = SegmentationProbeConfig(train_images=str(img), train_masks=str(msk), num_classes=2, epochs=1, min_steps=1)
    with pytest.raises(InputError, match=r"1 label value \(2\) but num_classes=2"):
        run_segmentation(tiny_backbone(), cfg, tmp_path / "out")


def test_band_mismatch_suggests_band_adaptation(tmp_path):
    (tmp_path / "img").mkdir()
    (tmp_path / "msk").mkdir()
    for i in range(2):
        with rasterio.open(
            tmp_path / "img" / f"t{i}.tif",
            "w",
            driver="GTiff",
            width=32,
            height=32,
            count=4,
            dtype="uint16",
            transform=from_origin(0, 32, 1, 1),  # a grid, so rasterio does not warn that the file has none
        ) as dst:
            dst.write(np.full((4, 32, 32), 1000, np.uint16))
        Image.fromarray(np.zeros((32, 32), np.uint8)).save(tmp_path / "msk" / f"t{i}.png")
    cfg = SegmentationProbeConfig(train_images=str(tmp_path / "img"), train_masks=str(tmp_path / "msk"), num_classes=2)
    with pytest.raises(InputError, match=r"has 4 bands but backbone .* expects 3; .*adapt the patch embedding"):
        run_segmentation(tiny_backbone(), cfg, tmp_path / "out")


def test_cli_reports_a_size_mismatch_with_exit_code_2(tmp_path, capsys):
    img, msk = make_folder(tmp_path, n=2, size=32)
    Image.fromarray(np.zeros((16, 16), np.uint8)).save(msk / "s0_mask.png")
    suite = tmp_path / "suite.yaml"
    suite.write_text(
        "tasks:\n  seg:\n    type: segmentation\n"
        f"    train_images: {img}\n    train_masks: {msk}\n    num_classes: 2\n    epochs: 1\n    min_steps: 1\n"
    )
    code = main(
        ["probe", "--config", str(suite), "--backbone", "arch:vit_tiny?patch_size=8", "--out", str(tmp_path / "o")]
    )
    assert code == 2
    assert "must match their image's size" in capsys.readouterr().err


class _Adapter(list):
    """What a dataset adapter gives: a sequence of probe samples with `classes` and `ignore_index`."""

    classes = ("background", "building", "road")
    ignore_index = 255


def test_samples_from_a_dataset_adapter_take_its_classes(tmp_path):
    torch.manual_seed(0)
    samples = _Adapter({"image": torch.rand(3, 32, 32), "mask": torch.randint(0, 3, (32, 32))} for _ in range(3))
    samples[0]["mask"][:4] = 255
    cfg = SegmentationProbeConfig(head="linear", crop_size=32, epochs=1, min_steps=1, batch_size=2, plots=0)
    train, val = _Adapter(samples[:2]), _Adapter(samples[2:])
    metrics = run_segmentation(tiny_backbone(), cfg, tmp_path / "out", train_data=train, val_data=val)
    assert {"IoU/background", "IoU/building", "IoU/road"} <= metrics.keys()
    assert cfg.num_classes == 0  # the caller's config is not modified


def test_feature_store_modes_agree(tmp_path):
    bb = tiny_backbone()
    tiles = torch.rand(5, 3, 16, 16)
    stores = {
        mode: dense.FeatureStore.from_tiles(bb, tiles, "four_last", mode, tmp_path / mode, batch_size=2)
        for mode in ("memory", "disk", "none")
    }
    ref_maps, ref_cls = dense.extract(bb, tiles[[4, 1]], "four_last")
    for mode, store in stores.items():
        assert len(store) == 5
        maps, cls = store.get([4, 1])
        assert len(maps) == 4 and len(cls) == 4
        for a, b in zip([*maps, *cls], [*ref_maps, *ref_cls]):  # float16 storage (features, or tiles for none)
            assert torch.allclose(a, b, atol=1e-2 * max(1.0, float(b.abs().max()))), mode


def test_same_seed_gives_the_same_head_whatever_drew_random_numbers_before(tmp_path):
    """The head is built after re-seeding: the global torch RNG state left by earlier work must not change it."""
    img, msk = make_folder(tmp_path, n=3, size=32)
    cfg = SegmentationProbeConfig(
        train_images=str(img),
        train_masks=str(msk),
        num_classes=2,
        head="linear",
        crop_size=32,
        epochs=1,
        min_steps=1,
        plots=0,
    )
    heads = []
    for i, before in enumerate((1, 2)):
        torch.manual_seed(before)
        run_segmentation(tiny_backbone(), cfg, tmp_path / f"out{i}")
        heads.append(torch.load(tmp_path / f"out{i}" / "segmentation_head.pt", weights_only=False)["state_dict"])
    assert all(torch.equal(heads[0][k], heads[1][k]) for k in heads[0])


def test_example_panels_have_a_legend_of_the_class_colours(tmp_path, monkeypatch):
    from geodino.eval import plots

    drawn = {}

    def keep(fig, path, **kwargs):
        drawn["legend"] = [t.get_text() for legend in fig.legends for t in legend.get_texts()]
        fig.clf()

    monkeypatch.setattr(plots, "save_figure", keep)
    item = (torch.rand(3, 16, 16), torch.zeros(16, 16, dtype=torch.long), torch.ones(16, 16, dtype=torch.long))
    plots.plot_examples([item], 3, 255, tmp_path / "ex.png", ["water", "forest", "urban"])
    assert drawn["legend"] == ["water", "forest", "urban", "ignored (255)"]
    plots.plot_examples([item], 2, 255, tmp_path / "ex.png")
    assert drawn["legend"] == ["0", "1", "ignored (255)"]
