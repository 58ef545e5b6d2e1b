"""geodino.data.curate: water filling, balanced sampling over a cluster tree, near-duplicates, the cloud rule,
resumable embedding, and the curated list read back by data.sources (images and raster windows)."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from geodino import cli
from geodino.data.config import SourceConfig
from geodino.data.curate import (
    balanced_sample,
    cloud_fraction,
    hierarchical_kmeans,
    near_duplicates,
    point_labels,
    water_fill,
)
from geodino.data.loaders import build_source
from tests.embed.conftest import write_tif

SPEC = "arch:vit_tiny?depth=1&seed=0&layerscale_init=1.0"  # layerscale 1e-5 makes every random CLS alike


def test_water_fill_hand_computed():
    rng = np.random.default_rng(0)
    out = water_fill(np.array([10, 2, 5]), 9, rng)  # x = 3 fits (3+2+3 = 8), one more to a cluster above 3
    assert out.sum() == 9 and out[1] == 2 and sorted([out[0], out[2]]) == [3, 4]
    assert water_fill(np.array([10, 2, 5]), 30, rng).tolist() == [10, 2, 5]
    assert water_fill(np.array([4, 4, 4]), 6, rng).tolist() == [2, 2, 2]


def test_balanced_sampling_lifts_a_rare_cluster():
    rng = np.random.default_rng(0)
    centres = rng.normal(size=(3, 8)) * 10
    sizes = [500, 50, 10]
    x = np.concatenate([c + rng.normal(size=(n, 8)) for c, n in zip(centres, sizes)]).astype(np.float32)
    truth = np.repeat([0, 1, 2], sizes)
    levels = hierarchical_kmeans(x, [9, 3], seed=0)
    labels = point_labels(levels)
    assert [lab.shape for lab in labels] == [(560,), (560,)]
    assert labels[1].max() == 2 and levels[1]["assign"].shape == (9,)
    picked = balanced_sample(x, levels, 60, seed=0)
    assert picked.size == 60 and np.unique(picked).size == 60
    counts = np.bincount(truth[picked], minlength=3)
    assert counts[2] == 10  # the rare blob is kept whole
    assert counts[0] == counts[1] == 25  # the rest split evenly between the two larger blobs
    random_counts = np.bincount(truth[rng.choice(560, 60, replace=False)], minlength=3)
    assert random_counts[2] < 5
    closest = balanced_sample(x, levels, 60, strategy="closest", seed=0)
    assert closest.size == 60


def test_near_duplicates_across_and_within_blocks():
    rng = np.random.default_rng(1)
    x = rng.normal(size=(20, 16)).astype(np.float32)
    x[7] = x[2]  # exact copy, other block with block=5
    x[3] = x[1] + 0.01 * rng.normal(size=16)  # near copy, same block
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    dup = near_duplicates(x, 0.99, block=5)
    assert np.flatnonzero(dup).tolist() == [3, 7]  # the later copy goes, the earlier stays
    assert not near_duplicates(x, 1.01, block=5).any()


def test_cloud_fraction_rule():
    img = np.zeros((4, 2, 2), np.float32)
    img[:3, 0, :] = 0.5  # top row white in R, G, B
    img[2, 1, 0] = 0.9  # one bright band only: not cloud
    valid = np.array([[True, True], [True, False]])
    assert cloud_fraction(img, valid, [0, 1, 2], 0.3) == pytest.approx(2 / 3)


def _image_archive(root):
    from PIL import Image

    rng = np.random.default_rng(0)
    colours = {"green": (40, 120, 40), "blue": (30, 60, 140), "grey": (90, 90, 90)}
    n = {"green": 14, "blue": 6, "grey": 3}
    for name, rgb in colours.items():
        (root / name).mkdir(parents=True)
        for i in range(n[name]):
            arr = np.clip(np.array(rgb) + rng.normal(0, 25, (32, 32, 3)), 0, 255).astype(np.uint8)
            Image.fromarray(arr).save(root / name / f"{i:02d}.png")
    (root / "zz").mkdir()
    for i in range(3):  # exact copies, sorted after their originals
        (root / "zz" / f"copy{i}.png").write_bytes((root / "green" / f"{i:02d}.png").read_bytes())
    for i in range(2):  # white tiles: clouds
        Image.fromarray(np.full((32, 32, 3), 250, np.uint8)).save(root / "zz" / f"white{i}.png")
    return root


def test_curate_images_end_to_end_and_resume(tmp_path, monkeypatch, capsys):
    root = _image_archive(tmp_path / "archive")
    out = tmp_path / "cur"
    argv = [
        "data",
        "curate",
        str(root),
        "-b",
        SPEC,
        "-o",
        str(out),
        "--size",
        "9",
        "--clusters",
        "4",
        "2",
        "--dedup",
        "0.999",
        "--chunk",
        "8",
        "--no-progress",
    ]
    assert cli.main(argv) == 0
    report = json.loads((out / "report.json").read_text())
    assert report["tiles"] == 28 and report["removed"]["cloud"] == 2 and report["removed"]["nodata"] == 0
    assert report["removed"]["duplicate"] >= 3
    tiles = pd.read_parquet(out / "tiles.parquet")
    dups = set(tiles.loc[tiles.status == "duplicate", "path"].map(lambda p: p.split("/")[-1]))
    assert {"copy0.png", "copy1.png", "copy2.png"} <= dups
    curated = pd.read_parquet(out / "curated.parquet")
    assert len(curated) == 9 and {"path", "cluster_l1", "cluster_l2"} <= set(curated.columns)
    assert sum(report["top_clusters"]["after"]) == 9
    assert (out / "exemplars.png").exists() and "near-duplicates" in (out / "report.md").read_text()
    assert len(list((out / "embeddings").glob("part_*.npz"))) == 4
    # data.sources accepts the list: 9 images
    src = build_source(SourceConfig(type="images", paths=[str(out / "curated.parquet")]))
    assert len(src) == 9
    # resume: cached chunks are not embedded again
    from geodino.backbones import FrozenBackbone

    def boom(*a, **k):
        raise AssertionError("re-embedded a cached chunk")

    (out / "embeddings" / "part_00003.npz").unlink()
    calls = []
    original = FrozenBackbone.features
    monkeypatch.setattr(FrozenBackbone, "features", lambda self, *a, **k: calls.append(1) or original(self, *a, **k))
    assert cli.main(argv) == 0
    assert len(calls) == 1  # only the missing last chunk (4 tiles, one batch)
    monkeypatch.setattr(FrozenBackbone, "features", boom)
    assert cli.main(argv) == 0
    assert pd.read_parquet(out / "curated.parquet").path.tolist() == curated.path.tolist()


def test_curate_raster_grid_to_geoparquet_and_back(tmp_path):
    import geopandas as gpd

    rng = np.random.default_rng(0)
    data = rng.integers(1, 255, (3, 128, 128)).astype(np.uint8)
    data[:, :64, :64] = 0  # a nodata quadrant: 4 of 16 tiles
    tif = write_tif(tmp_path / "scene.tif", data, nodata=0)
    out = tmp_path / "cur"
    assert (
        cli.main(
            [
                "data",
                "curate",
                str(tif),
                "--type",
                "raster",
                "--tile-size",
                "32",
                "-b",
                SPEC,
                "-o",
                str(out),
                "--size",
                "6",
                "--clusters",
                "3",
                "--no-progress",
            ]
        )
        == 0
    )
    report = json.loads((out / "report.json").read_text())
    assert report["tiles"] == 16 and report["removed"]["nodata"] == 4 and report["kept"] == 6
    g = gpd.read_parquet(out / "curated.parquet")
    assert len(g) == 6 and g.crs.to_epsg() == 4326 and {"col", "row", "width", "height"} <= set(g.columns)
    assert ((g.col >= 64) | (g.row >= 64)).all()  # no tile of the nodata quadrant
    assert (out / "map.png").exists()
    src = build_source(SourceConfig(type="raster", paths=[str(out / "curated.parquet")]))
    assert len(src) == 6
    seen = {src.tile(i, seed=0)[1:3] for i in range(6)}
    assert seen == set(zip(g.col.tolist(), g.row.tolist()))


def test_curate_bad_inputs(capsys, tmp_path):
    from tests.test_bad_inputs import one_line_exit_2

    root = _image_archive(tmp_path / "archive")
    one_line_exit_2(
        capsys,
        tmp_path,
        "data",
        "curate",
        root,
        "-b",
        SPEC,
        "-o",
        tmp_path / "o",
        "--size",
        "100",
        expect=("--size 100 (size= in Python) is larger than the archive (28 tiles)",),
    )
    (tmp_path / "empty").mkdir()
    one_line_exit_2(
        capsys,
        tmp_path,
        "data",
        "curate",
        tmp_path / "empty",
        "-b",
        SPEC,
        "-o",
        tmp_path / "o",
        "--size",
        "5",
        expect=("holds no image files",),
    )
    one_line_exit_2(
        capsys,
        tmp_path,
        "data",
        "curate",
        root,
        "-b",
        SPEC,
        "-o",
        tmp_path / "o",
        "--size",
        "5",
        "--clusters",
        "2",
        "4",
        expect=("must not grow",),
    )
