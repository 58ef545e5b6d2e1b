"""JPEGs of web-image sources decode at 1/2..1/8 scale (`fast_decode`) only as far as every crop stays unupsampled."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from geodino.data.config import DataConfig, SourceConfig
from geodino.data.crops import CropsConfig, MultiCropTransform
from geodino.data.images import ImageFolderSource
from geodino.data.loaders import build_ssl_loader, decode_min_area


def _photo(path: Path, w: int, h: int) -> Path:
    """A textured RGB JPEG (smooth waves + noise: JPEG-like content, not flat colour)."""
    from PIL import Image

    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:h, 0:w]
    base = 128 + 60 * np.sin(x / 23) * np.cos(y / 31) + rng.normal(0, 8, (h, w))
    arr = np.stack([base, 0.9 * np.roll(base, 5, 1), 0.8 * base[::-1]], -1).clip(0, 255).astype(np.uint8)
    Image.fromarray(arr).save(path, quality=90)
    return path


@pytest.fixture(scope="module")
def big(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return _photo(tmp_path_factory.mktemp("jpg") / "big.jpg", 2000, 1500)


def test_the_minimum_area_follows_the_crop_geometry() -> None:
    # defaults: local 96 px at scale 0.05 and ratio 3/4 needs 97^2 / (0.05 * 0.75) px; global 225^2 / 0.24 is less
    assert decode_min_area(CropsConfig()) == 250907
    assert decode_min_area(CropsConfig(gram=True)) == 840005  # Gram crops of 448 px from the global boxes


def test_a_large_jpeg_is_reduced_only_when_allowed(big: Path) -> None:
    area = decode_min_area(CropsConfig())
    fast = ImageFolderSource([big])
    assert fast.get(0, 0)["image"].shape == (3, 1500, 2000)  # no minimum known (probes, stats): full size
    fast.decode_min_area = area
    # 1/4 would leave 500x375 = 187,500 px < 250,907: 1/2 is the largest safe reduction
    assert fast.get(0, 0)["image"].shape == (3, 750, 1000)
    full = ImageFolderSource([big], fast_decode=False)
    full.decode_min_area = area
    assert full.get(0, 0)["image"].shape == (3, 1500, 2000)


def test_a_small_jpeg_is_not_reduced(tmp_path: Path) -> None:
    src = ImageFolderSource([_photo(tmp_path / "small.jpg", 640, 480)])
    src.decode_min_area = decode_min_area(CropsConfig())  # 320x240 = 76,800 px would be too few
    assert src.get(0, 0)["image"].shape == (3, 480, 640)


def test_crops_of_a_reduced_decode_match_the_full_decode(big: Path) -> None:
    cfg = CropsConfig()
    out = {}
    for fast in (False, True):
        src = ImageFolderSource([big], fast_decode=fast)
        src.decode_min_area = decode_min_area(cfg)
        sample = src.get(0, 0)
        out[fast] = (sample["image"].shape[-1], MultiCropTransform(cfg, src.sensor)(sample, np.random.default_rng(5)))
    (w_full, a), (w_red, b) = out[False], out[True]
    f = w_full / w_red
    assert f == 2
    for kind, size in (("global", cfg.global_size), ("local", cfg.local_size)):
        for x, y, box_full, box_red in zip(
            a[f"{kind}_crops"], b[f"{kind}_crops"], a[f"{kind}_boxes"], b[f"{kind}_boxes"]
        ):
            # the same box relative to the image (within a reduced pixel of rounding), never cut from fewer pixels
            assert np.abs(np.asarray(box_red) * f - np.asarray(box_full)).max() <= 2 * f
            assert min(box_red[2] - box_red[0], box_red[3] - box_red[1]) >= size
            # standardised crops: measured mean |diff| 0.007-0.017 (0.4-1.0 DN of 255); two different crops: ~0.6
            assert float((x - y).abs().mean()) < 0.04


def test_the_ssl_loader_passes_its_minimum_to_image_sources(big: Path) -> None:
    cfg = CropsConfig(gram=True)
    data = DataConfig(sources=[SourceConfig(type="images", paths=[str(big)])])
    loader = build_ssl_loader(data, cfg, batch_size=1, num_workers=0, max_steps=1, progress=False)
    assert loader.sources[0].decode_min_area == decode_min_area(cfg)
    assert loader.sources[0].fast_decode
    batch = next(iter(loader))
    assert batch is not None


def test_fast_decode_false_in_a_yaml_source_keeps_the_full_decode(big: Path, tmp_path: Path) -> None:
    """`fast_decode: false` is a source key (a YAML config), not only a Python argument."""
    from geodino.config import load_config
    from geodino.train.config import PretrainConfig

    yaml = tmp_path / "c.yaml"
    yaml.write_text(f"data:\n  sources:\n    - {{type: images, paths: ['{big}'], fast_decode: false}}\n")
    data = load_config(PretrainConfig, str(yaml)).data
    loader = build_ssl_loader(data, CropsConfig(), batch_size=1, num_workers=0, max_steps=1, progress=False)
    assert not loader.sources[0].fast_decode


def test_a_reduced_decode_is_upright_as_the_full_one(tmp_path: Path) -> None:
    from PIL import Image

    path = _photo(tmp_path / "turned.jpg", 2000, 1500)
    with Image.open(path) as im:
        exif = im.getexif()
        exif[0x0112] = 6  # stored sideways: shown turned 90 degrees clockwise
        im.save(path, quality=90, exif=exif)
    full = ImageFolderSource([path]).get(0, 0)["image"]
    src = ImageFolderSource([path])
    src.decode_min_area = decode_min_area(CropsConfig())
    reduced = src.get(0, 0)["image"]
    assert full.shape == (3, 2000, 1500) and reduced.shape == (3, 1000, 750)
    pooled = full.reshape(3, 1000, 2, 750, 2).mean(axis=(2, 4))  # 2x2 means: the view the DCT scaling gives
    assert float(np.abs(pooled - reduced).mean()) < 0.02  # measured 0.0017; turned 180 degrees it is 0.126


def test_tar_shards_reduce_their_jpegs_too(big: Path, tmp_path: Path) -> None:
    import tarfile

    from geodino.data.images import TarShardSource

    shard = tmp_path / "s.tar"
    with tarfile.open(shard, "w") as tf:
        tf.add(big, arcname="a.jpg")
    for fast, shape in ((True, (3, 750, 1000)), (False, (3, 1500, 2000))):
        src = TarShardSource([shard], fast_decode=fast)
        src.decode_min_area = decode_min_area(CropsConfig())
        assert src.get(0, 0)["image"].shape == shape
