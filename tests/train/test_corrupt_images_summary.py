"""The end of `geodino pretrain` says how many corrupt images were replaced ("pretraining done: RUN; 2 corrupt images
replaced"): each DataLoader worker counted the images it found corrupt in its own process, and the run's end said
nothing of them. The loader marks them in shared memory (a flag per image, so a file two workers meet counts once)."""

from __future__ import annotations

from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from geodino.cli import main
from geodino.train.pretrain_fit import _corrupt_note
from tests.train.conftest import TINY_CONFIG, ln_k_plateau


def photo_folder(photos: Path) -> Path:
    """2 photos and 2 corrupt files (an error page saved as .jpg, an empty one)."""
    photos.mkdir()
    rng = np.random.default_rng(0)
    for i in range(2):
        Image.fromarray(rng.integers(0, 255, (40, 40, 3), dtype=np.uint8)).save(photos / f"p{i}.jpg")
    (photos / "error_page.jpg").write_bytes(b"<html>404</html>")
    (photos / "empty.jpg").write_bytes(b"")
    return photos


FAST = ["checkpoint.export_at_end=false", "checkpoint.every_n_steps=2"]  # the end-of-run line needs neither


@ln_k_plateau
@pytest.mark.filterwarnings("ignore:skipped corrupt image .*:UserWarning")  # each named once: the source's own lines
def test_the_done_line_counts_corrupt_images_over_workers(tmp_path, capsys):
    photos = photo_folder(tmp_path / "photos")
    # 4 images, batches of 4: each of the two workers reads one step, a whole pass, and meets both corrupt files
    config = TINY_CONFIG.format(out=tmp_path / "run", data=photos).replace("type: raster", "type: images")
    config = config.replace("num_workers: 0", "num_workers: 2").replace(", tile_size: 48", "")
    (tmp_path / "c.yaml").write_text(config)
    assert main(["pretrain", "-c", str(tmp_path / "c.yaml"), "crops.vflips=false", "crops.rot90=false", *FAST]) == 0
    out = capsys.readouterr().out
    assert f"geodino: pretraining done: {tmp_path / 'run'}; 2 corrupt images replaced\n" in out


def test_no_corrupt_image_no_words_and_several_ranks_say_whose_count():
    def trainer(n: int | None, world: int = 1) -> SimpleNamespace:
        loader = None if n is None else SimpleNamespace(dataset=SimpleNamespace(corrupt_replaced=lambda: n))
        return SimpleNamespace(train_dataloader=loader, world_size=world)

    assert _corrupt_note(trainer(0)) == ""
    assert _corrupt_note(trainer(None)) == ""  # a finished run's re-run builds no loader
    assert _corrupt_note(trainer(1)) == "; 1 corrupt image replaced"
    assert _corrupt_note(trainer(3, world=2)) == "; 3 corrupt images replaced on rank 0"


@pytest.mark.filterwarnings("ignore:skipped corrupt image .*:UserWarning")
def test_without_workers_the_training_process_counts_them(tmp_path):
    from geodino.data.config import DataConfig, SourceConfig
    from geodino.data.crops import CropsConfig
    from geodino.data.loaders import build_ssl_loader

    data = DataConfig(sources=[SourceConfig(type="images", paths=[str(photo_folder(tmp_path / "p"))])])
    crops = CropsConfig(global_size=16, local_size=8, n_local=1)
    loader = build_ssl_loader(data, crops, batch_size=4, num_workers=0, max_steps=1, patch_size=8, progress=False)
    flags = [f for f in loader.dataset._corrupt._flags if f is not None]
    assert flags and not any(f.is_shared() for f in flags)  # no worker process reads them: no shared memory
    assert loader.dataset.corrupt_replaced() == 0  # none read yet
    for _ in loader:
        pass
    assert loader.dataset.corrupt_replaced() == 2  # one pass over the 4 images


@pytest.mark.filterwarnings("ignore:skipped corrupt image .*:UserWarning")
def test_the_distillation_done_line_counts_them_too(tmp_path, capsys):
    """`geodino distill` reads its data through the same SSL dataset: its done line says the count as pretraining's."""
    from tests.train.conftest import ONE_STUDENT
    from tests.train.test_distill import _overrides

    photos = photo_folder(tmp_path / "photos")
    # one step (and one warm-up step) of 4 images from 4: every image read, each corrupt one counted once
    fast = ("train.max_steps=1", "teacher.head_warmup_steps=1")
    assert main(["distill", *_overrides(photos, tmp_path / "run", ONE_STUDENT, *fast)]) == 0
    out = capsys.readouterr().out
    assert "geodino: distillation done: tiny -> " in out and out.endswith("; 2 corrupt images replaced\n"), out
