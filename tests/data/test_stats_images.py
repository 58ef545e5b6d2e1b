"""`geodino data stats --type images`/`tar`: each image read whole and once (every one of a folder smaller than
--samples, else a uniform sample without replacement), a corrupt file said once, --tile-size refused, and the chip
size recorded as it is (one size, or the range of mixed sizes)."""

from __future__ import annotations

import tarfile
import warnings

import numpy as np
import pytest
import yaml
from PIL import Image

from geodino import cli
from geodino.data.stats import compute_stats
from tests.test_bad_inputs import one_line_exit_2


def _folder(root):
    """Two black 32x32 PNGs, one white 200x200 PNG and a corrupt JPEG: per pixel, 40,000 of 42,048 are white."""
    root.mkdir()
    Image.new("RGB", (32, 32), (0, 0, 0)).save(root / "a.png")
    Image.new("RGB", (32, 32), (0, 0, 0)).save(root / "b.png")
    Image.new("RGB", (200, 200), (255, 255, 255)).save(root / "c.png")
    (root / "bad.jpg").write_bytes(b"junk")
    return root


def test_a_folder_smaller_than_samples_is_read_once_per_image(tmp_path):
    """The old random tiles re-read 3 images 256 times (uneven weights, 90 corrupt-file warnings); now each once:
    the mean is the exact per-pixel mean, the corrupt file is said once, and the mixed sizes are recorded."""
    src = _folder(tmp_path / "small")
    with warnings.catch_warnings(record=True) as said:
        warnings.simplefilter("always")
        sensor, prov = compute_stats(str(src), type="images", progress=False)
    corrupt = [w for w in said if "bad.jpg" in str(w.message)]
    assert len(corrupt) == 1
    n = 2 * 32 * 32 + 200 * 200
    assert prov["pixels"] == [n] * 3 and prov["tiles"] == 3 and prov["method"] == "exact: every image"
    np.testing.assert_allclose(sensor.mean, [40000 / n] * 3, atol=1e-6)
    assert prov["chip_size"] == {"min": [32, 32], "max": [200, 200]} and "tile_size" not in prov


def test_more_images_than_samples_are_a_sample_without_repeats(tmp_path):
    """12 images 8 px high and 2**k px wide, --samples 5: the valid pixels / 8 are a sum of five powers of two,
    which has five bits set only when the five images are different ones."""
    root = tmp_path / "imgs"
    root.mkdir()
    for k in range(12):
        Image.new("RGB", (2**k, 8), (k, k, k)).save(root / f"{k:02d}.png")
    _, prov = compute_stats(str(root), type="images", samples=5, progress=False)
    assert prov["tiles"] == 5 and prov["method"] == "uniform sample of 12 images"
    assert prov["pixels"][0] % 8 == 0 and bin(prov["pixels"][0] // 8).count("1") == 5


# constant bands give exact expected values; their warning is expected (test_stats_edge asserts it)
@pytest.mark.filterwarnings("ignore:.*constant or nearly:UserWarning")
def test_tar_shard_with_one_image_is_read_once(tmp_path):
    img = tmp_path / "x.png"
    Image.new("RGB", (40, 30), (51, 51, 51)).save(img)
    with tarfile.open(tmp_path / "s.tar", "w") as tf:
        tf.add(img, arcname="k0.png")
    sensor, prov = compute_stats(str(tmp_path / "s.tar"), type="tar", samples=64, progress=False)
    assert prov["pixels"] == [40 * 30] * 3 and prov["tiles"] == 1 and prov["chip_size"] == [30, 40]
    np.testing.assert_allclose(sensor.mean, [0.2] * 3, atol=1e-6)


def test_tile_size_is_refused_for_images_in_one_line(capsys, tmp_path):
    src = _folder(tmp_path / "small")
    said = ("--tile-size 16 (tile_size= in Python) does not apply to image folders", "leave --tile-size out")
    one_line_exit_2(capsys, tmp_path, "data", "stats", src, "--type", "images", "--out", tmp_path / "s.yaml",
                    "--tile-size", "16", expect=said)  # fmt: skip
    assert not (tmp_path / "s.yaml").exists()
    # the raster default too
    said = ("--tile-size 256 (tile_size= in Python) does not apply to image folders", "leave --tile-size out")
    one_line_exit_2(capsys, tmp_path, "data", "stats", src, "--type", "images", "--out", tmp_path / "s.yaml",
                    "--tile-size", "256", expect=said)  # fmt: skip


def test_cli_yaml_records_every_image_once(tmp_path):
    src = _folder(tmp_path / "small")
    out = tmp_path / "s.yaml"
    with pytest.warns(UserWarning, match="skipped corrupt image"):
        assert cli.main(["data", "stats", str(src), "--type", "images", "--out", str(out)]) == 0
    got = yaml.safe_load(out.read_text())["stats"]
    assert got["tiles"] == 3 and got["pixels"] == [42048] * 3
