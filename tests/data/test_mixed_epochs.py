"""Several weighted sources: each numbers its own samples (by its earlier steps), so a grid or image source mixed
with others still visits each of its items once per epoch of its own (indices were global, s·B·w + r·B + j, and a
source read scattered slices of several epochs' permutations: 147 distinct of 200 images in its first 200 reads),
and a resumed run still reads exactly what the uninterrupted one read."""

from __future__ import annotations

import numpy as np
from PIL import Image

from geodino.data.config import CropsConfig, DataConfig, SourceConfig
from geodino.data.loaders import build_ssl_loader

N, B = 24, 4
CROPS = CropsConfig(global_size=16, local_size=16, n_local=1)


def _config(tmp_path) -> DataConfig:
    folder = tmp_path / "imgs"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for i in range(N):
        Image.fromarray(rng.integers(0, 255, (16, 16, 3), dtype=np.uint8)).save(folder / f"{i:02d}.png")
    img = SourceConfig(name="img", type="images", paths=[str(folder)], sensor="imagenet", weight=1.0)
    syn = SourceConfig(name="syn", type="synthetic", sensor="imagenet", tile_size=16, weight=1.0)
    return DataConfig(sources=[img, syn])


def _keys(loader, start: int, stop: int) -> list[tuple[int, int, int, int]]:
    sampler = loader.batch_sampler
    sampler.start_step, sampler.max_steps = start, stop
    return [k for keys in sampler for k in keys]


def test_a_mixed_image_source_visits_every_item_once_in_its_first_n_reads(tmp_path):
    loader = build_ssl_loader(
        _config(tmp_path), CROPS, batch_size=B, num_workers=0, seed=0, max_steps=1, progress=False
    )
    src = loader.sources[0]
    keys = [k for k in _keys(loader, 0, 200) if k[2] == 0]
    assert len(keys) >= 2 * N
    items = [src._position(k[1], 0) for k in keys]
    assert len(set(items[:N])) == N  # one epoch of its own: every image once
    assert len(set(items[N : 2 * N])) == N  # and the next


def test_resumed_mixed_run_reads_the_same_keys(tmp_path):
    loader = build_ssl_loader(
        _config(tmp_path), CROPS, batch_size=B, num_workers=0, seed=3, max_steps=1, progress=False
    )
    full = _keys(loader, 0, 60)
    again = build_ssl_loader(
        _config(tmp_path / "b"), CROPS, batch_size=B, num_workers=0, seed=3, max_steps=1, progress=False
    )
    assert _keys(again, 37, 60) == full[37 * B :]
    # a resume after a later one (the mixer's cached prefix counts go back to 0)
    assert _keys(again, 55, 60) == full[55 * B :] and _keys(again, 11, 60) == full[11 * B :]
    # one source: the indices are the step's, as before
    single = DataConfig(sources=[_config(tmp_path / "c").sources[0]])
    one = build_ssl_loader(single, CROPS, batch_size=B, num_workers=0, seed=3, max_steps=1, progress=False)
    assert [k[1] for k in _keys(one, 5, 7)] == list(range(5 * B, 7 * B))
