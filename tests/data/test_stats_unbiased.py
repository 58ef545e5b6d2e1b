"""`geodino data stats` is unbiased: exact over every valid pixel when the grid of non-overlapping windows fits
the sample budget, a pixel-uniform sample of those windows otherwise (issue 13: random overlapping windows put
band-5 of a 349x352 Landsat scene 11 % off)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from geodino import cli
from geodino.data.stats import compute_stats
from geodino.data.stats_windows import grid_windows
from tests import helpers


def write_tif(path, data, nodata=None):
    from rasterio.transform import from_origin

    return helpers.write_tif(path, data, transform=from_origin(0, 0, 10, 10), nodata=nodata)


def radial(h: int, w: int, nodata_corner: bool = True) -> np.ndarray:
    """Bright centre, dark rim (what random windows over-weight), a nodata corner, two bands, uint16."""
    yy, xx = np.mgrid[0:h, 0:w]
    r = np.hypot((yy - h / 2) / h, (xx - w / 2) / w)
    rng = np.random.default_rng(h * 1000 + w)
    b0 = 4000 - 5000 * r + rng.normal(0, 200, (h, w))
    b1 = 1000 + 3000 * (xx / w) + rng.normal(0, 100, (h, w))
    data = np.clip(np.stack([b0, b1]), 1, 10000).astype(np.uint16)
    if nodata_corner:
        data[:, : h // 4, : w // 3] = 0
    return data


def exact(data: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    valid = ~np.all(data == 0, axis=0)
    x = data[:, valid].astype(np.float64) * 1e-4
    return x.mean(1), x.std(1, ddof=1)


@pytest.mark.parametrize("shape", [(349, 352), (40, 50), (256, 256), (300, 70)])
def test_exact_when_the_grid_fits_the_budget(tmp_path, shape):
    data = radial(*shape)
    path = write_tif(tmp_path / "x.tif", data, nodata=0)
    out = tmp_path / "x.yaml"
    # the CLI, default budget (256 windows of 256 px): every raster here fits, including ones smaller than a tile
    assert cli.main(["data", "stats", str(path), "--out", str(out), "--scale", "1e-4"]) == 0
    got = yaml.safe_load(out.read_text())
    mean, std = exact(data)
    np.testing.assert_allclose(got["mean"], mean, atol=2e-6)
    np.testing.assert_allclose(got["std"], std, atol=2e-6)
    assert got["stats"]["method"] == "exact: every pixel"
    n_valid = int((~np.all(data == 0, axis=0)).sum())
    assert got["stats"]["pixels"] == [n_valid] * 2
    # the percentiles say whether they saw every pixel (the 349x352 scene has more than their ~200k budget)
    if n_valid > 200_000:
        assert (
            got["stats"]["percentiles_from"].startswith("a random ")
            and f"{n_valid:,} valid" in (got["stats"]["percentiles_from"])
        )
    else:
        assert got["stats"]["percentiles_from"] == "every valid pixel read"
    p50 = np.percentile(data[:, ~np.all(data == 0, axis=0)].astype(np.float64) * 1e-4, 50, axis=1)
    np.testing.assert_allclose(got["stats"]["p50"], p50, atol=2e-3)


def test_an_all_nodata_raster_names_the_tiles_it_read(tmp_path, capsys):
    path = write_tif(tmp_path / "blank.tif", np.zeros((2, 40, 50), np.uint16), nodata=0)
    assert cli.main(["data", "stats", str(path), "--out", str(tmp_path / "x.yaml"), "--scale", "1e-4"]) == 2
    [line] = [x for x in capsys.readouterr().err.splitlines() if "error:" in x]  # names the file and the way out
    assert f"no valid pixel for 2 bands (b1, b2) in the 1 tile read of {path}: every pixel is nodata" in line
    assert line.endswith("pass a --nodata (nodata= in Python) if their declared nodata value is wrong")
    assert not (tmp_path / "x.yaml").exists()


def test_several_files_are_weighted_by_their_pixels(tmp_path):
    a, b = radial(120, 90), radial(33, 200)
    pa, pb = write_tif(tmp_path / "a.tif", a, nodata=0), write_tif(tmp_path / "b.tif", b, nodata=0)
    sensor, prov = compute_stats([str(pa), str(pb)], scale=1e-4, tile_size=32, progress=False)
    both = np.concatenate([a[:, ~np.all(a == 0, axis=0)], b[:, ~np.all(b == 0, axis=0)]], axis=1) * 1e-4
    np.testing.assert_allclose(sensor.mean, both.mean(1), atol=2e-6)
    np.testing.assert_allclose(sensor.std, both.std(1, ddof=1), atol=2e-6)
    assert prov["tiles"] == 4 * 3 + 2 * 7


def test_sampled_windows_are_pixel_uniform(tmp_path):
    data = radial(320, 352)
    path = write_tif(tmp_path / "x.tif", data, nodata=0)
    mean, std = exact(data)
    # 110 grid windows of 32 px, 40 drawn per seed: the estimate scatters around the exact value, without the
    # centre bias of random overlapping windows (whose mean of band 0 sits several % high here)
    means, stds = [], []
    for seed in range(24):
        sensor, prov = compute_stats(str(path), scale=1e-4, samples=40, tile_size=32, seed=seed, progress=False)
        assert prov["tiles"] == 40 and prov["method"].startswith("uniform sample of 110")
        means.append(sensor.mean)
        stds.append(sensor.std)
    for est, ref in ((np.array(means), mean), (np.array(stds), std)):
        se = est.std(0, ddof=1) / np.sqrt(len(est))
        assert 3 * se[0] < 0.01  # enough power: random overlapping windows put band 0 0.015 (7 %) high here
        assert (np.abs(est.mean(0) - ref) < 3 * se).all(), (est.mean(0), ref, se)


def test_grid_windows_cover_every_pixel_once():
    class Scene:
        def __init__(self, h, w):
            self.height, self.width = h, w

    scenes = [Scene(70, 33), Scene(5, 5), Scene(64, 64)]
    wins, total = grid_windows(scenes, 32, 1000, 0)
    assert total == len(wins) == 3 * 2 + 1 + 4
    for i, sc in enumerate(scenes):
        cover = np.zeros((sc.height, sc.width), int)
        for j, x, y, w, h in wins:
            if j == i:
                cover[y : y + h, x : x + w] += 1
        assert (cover == 1).all()
    some, total = grid_windows(scenes, 32, 4, 1)
    assert total == 11 and len(some) == 4 and len(set(some)) == 4 and set(some) <= set(wins)
