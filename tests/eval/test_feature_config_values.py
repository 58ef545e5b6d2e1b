"""A probe's `features` keys a user mistypes: `batch_size=0` (the DataLoader's traceback after the backbone loaded),
`layers=2` (a count of last blocks, as `layer_indices` reads it: 'int' object is not iterable) and an `image_size`
whose input batch cannot fit in memory (torch's allocator traceback), the last also for `embed images`."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from geodino.errors import ConfigError
from geodino.eval.features import FeatureConfig, extract_features
from tests.eval.test_features import make_ds
from tests.eval.tiny_backbone import TinyBackbone


def test_batch_size_below_one_is_refused_when_the_config_is_made():
    with pytest.raises(ConfigError, match=r"features\.batch_size=0 must be >= 1"):
        FeatureConfig(batch_size=0)


def test_layers_as_a_count_takes_the_last_blocks():
    bb, ds = TinyBackbone(), make_ds()
    by_count = extract_features(bb, ds, FeatureConfig(layers=2, batch_size=4, cache=False), progress=False)
    n = bb.n_blocks
    named = extract_features(bb, ds, FeatureConfig(layers=[n - 2, n - 1], batch_size=4, cache=False), progress=False)
    assert by_count.cls.shape[1] == 2 and torch.equal(by_count.cls, named.cls)


def test_an_image_size_whose_batch_cannot_fit_is_refused(monkeypatch):
    monkeypatch.setattr("geodino.embed.memory.available_memory", lambda: 10_000)  # 16 px x 4 x 3 bands needs 12 kB
    bb, ds = TinyBackbone(), make_ds()
    with pytest.raises(ConfigError, match=r"image size 16 px with batch size 4 needs .* features\.image_size"):
        extract_features(bb, ds, FeatureConfig(image_size=16, batch_size=4, cache=False), progress=False)
    assert bb.calls == 0


def test_embed_images_refuses_an_image_size_that_cannot_fit(tmp_path, monkeypatch, capsys):
    from PIL import Image

    from geodino.cli import main

    root = tmp_path / "chips"
    root.mkdir()
    Image.fromarray((np.random.default_rng(0).random((16, 16, 3)) * 255).astype(np.uint8)).save(root / "a.png")
    monkeypatch.setattr("geodino.embed.memory.available_memory", lambda: 10_000)
    out = tmp_path / "o.parquet"
    spec = "arch:vit_tiny?depth=1&patch_size=8&seed=0"
    argv = ["embed", "images", str(root), "-b", spec, "--out", str(out), "--image-size", "64", "--no-progress"]
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert "image size 64 px with batch size 32 needs" in err and "--image-size (0: native)" in err, err
    assert "Traceback" not in err and not Path(out).exists()


@pytest.mark.parametrize("workers", [-1, 33])
def test_num_workers_outside_zero_to_eight_per_cpu_is_refused(workers, monkeypatch):
    """Readers mostly wait on disks and the network (remote COGs): up to 8 per CPU; 100000 hung starting them."""
    monkeypatch.setattr("os.sched_getaffinity", lambda pid: set(range(4)), raising=False)
    with pytest.raises(ConfigError, match=rf"features\.num_workers={workers} must be in 0\.\.32 \(reader processes"):
        FeatureConfig(num_workers=workers)
    FeatureConfig(num_workers=32)
