"""Fixtures of the pretraining tests: tiny GeoTIFFs, a tiny-ViT config, and one short real run shared by tests."""

from __future__ import annotations

from pathlib import Path

import pytest

TINY_CONFIG = """\
name: tiny
output_dir: {out}
seed: 0
batch_size: 4
num_workers: 0
ssl:
  student: {{arch: vit_tiny, patch_size: 8, in_chans: 3, drop_path_rate: 0.1, overrides: {{depth: 2}}}}
  dino: {{head_n_prototypes: 64, head_hidden_dim: 32, head_bottleneck_dim: 16}}
  ibot: {{head_n_prototypes: 64, head_hidden_dim: 32, head_bottleneck_dim: 16}}
  koleo: {{loss_weight: 0.1}}
  optim: {{freeze_last_layer_iters: 1, clip_grad: 3.0}}
  monitor: {{every: 1, warmup_iters: 0}}
  schedules:
    lr: {{start: 0, peak: 1.0e-3, end: 1.0e-4, warmup_iters: 1}}
    teacher_temp: {{start: 0.04, peak: 0.07, end: 0.07, warmup_iters: 1}}
data:
  sources: [{{type: raster, paths: [{data}], tile_size: 48, sensor: imagenet}}]
crops: {{global_size: 32, local_size: 16, n_local: 2}}
trainer:
  {{max_steps: 2, accelerator: cpu, precision: 32-true, loggers: [csv], log_every_n_steps: 1, progress_bar: false}}
checkpoint: {{every_n_steps: 1, keep_last: 2}}
"""


def write_rasters(folder: Path, n: int = 2, bands: int = 3, size: int = 64) -> Path:
    """Small random uint8 GeoTIFFs (UTM, 10 m) in `folder`."""
    import numpy as np
    from rasterio.transform import from_origin

    from tests.helpers import write_tif

    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(0)
    for i in range(n):
        # smooth-ish fields so crops differ in content, not only in noise
        base = rng.random((bands, size // 8, size // 8))
        arr = (np.kron(base, np.ones((8, 8))) * 200 + rng.random((bands, size, size)) * 55).astype("uint8")
        transform = from_origin(500000 + 1000 * i, 4000000, 10, 10)
        write_tif(folder / f"scene{i}.tif", arr, crs="EPSG:32618", transform=transform)
    return folder


# A few-step run of TINY_CONFIG (monitor every step from step 0) sits at the ln K plateau of the official
# initialisation: its teacher's targets are uniform, and the monitor rightly says "the teacher looks collapsed".
# Tests that run it for what else it does mark themselves with this; the warning is the subject of test_monitors
# and test_collapse_rank, which assert it.
ln_k_plateau = pytest.mark.filterwarnings(
    "ignore:the teacher looks collapsed at step .*teacher outputs are uniform:geodino.train.monitors.CollapseWarning"
)


def write_config(path: Path, out: Path, data: Path, extra: str = "") -> Path:
    path.write_text(TINY_CONFIG.format(out=out, data=data) + extra)
    return path


@pytest.fixture(scope="session")
def tiny_data(tmp_path_factory) -> Path:
    return write_rasters(tmp_path_factory.mktemp("rasters"))


@pytest.fixture(scope="session")
def tiny_run(tmp_path_factory, tiny_data) -> Path:
    """A 2-step pretraining run of a tiny ViT through `geodino.train.pretrain` (shared by several tests)."""
    from geodino.config import load_config
    from geodino.train.pretrain import PretrainConfig, pretrain

    root = tmp_path_factory.mktemp("run")
    cfg_path = write_config(root / "tiny.yaml", root / "run", tiny_data)
    return pretrain(load_config(PretrainConfig, cfg_path))


def add_trainer_callback(monkeypatch, callback) -> None:
    """Every Lightning trainer `geodino.train.module.build_trainer` makes from now on gets `callback` too (a test's
    stand-in for a kill, a Ctrl-C or any event mid-run)."""
    import geodino.train.module as module_lib

    real = module_lib.build_trainer

    def build(*args, **kwargs):
        trainer, cb = real(*args, **kwargs)
        trainer.callbacks.append(callback)
        return trainer, cb

    monkeypatch.setattr(module_lib, "build_trainer", build)


# the one line a start refusal gives for data whose every pixel is nodata (pretrain and distill alike)
NODATA = "16 sampled tiles hold no valid pixel, every pixel read is nodata"


@pytest.fixture(scope="session")
def blank(tmp_path_factory) -> Path:
    """A folder with one GeoTIFF whose every pixel is its nodata value: data a run must refuse to start on."""
    import numpy as np
    from rasterio.transform import from_origin

    from tests.helpers import write_tif

    folder = tmp_path_factory.mktemp("blank")
    arr = np.zeros((3, 64, 64), "uint8")
    write_tif(folder / "z.tif", arr, crs="EPSG:32618", transform=from_origin(500000, 4000000, 10, 10), nodata=0)
    return folder


@pytest.fixture(scope="module")
def images(tmp_path_factory) -> Path:
    """Eight 40 x 40 RGB PNGs with some structure (a red band of growing height): the distillation tests' chips."""
    import numpy as np
    from PIL import Image

    root = tmp_path_factory.mktemp("imgs")
    rng = np.random.default_rng(0)
    for i in range(8):
        arr = (rng.random((40, 40, 3)) * 255).astype(np.uint8)
        arr[: 10 + i, :, 0] = 255  # some structure
        Image.fromarray(arr).save(root / f"im{i}.png")
    return root


@pytest.fixture
def api_configs(monkeypatch, tmp_path):
    """The configs `geodino.pretrain` / `geodino.distill` would run (the runs themselves replaced)."""
    import geodino.train.distill as distill_lib
    import geodino.train.pretrain as pretrain_lib

    configs = []
    monkeypatch.setattr(pretrain_lib, "pretrain", lambda cfg: configs.append(cfg) or tmp_path / "run")
    monkeypatch.setattr(distill_lib, "distill", lambda cfg: configs.append(cfg) or {})
    return configs


def signal_after_step(train_step, at: int, sig: int):
    """`train_step` of the distillation loop that sends this process `sig` once step `at` has run: a Ctrl-C
    (SIGINT) or SLURM's warning (SIGUSR1) between two steps."""
    import signal

    def step_then_signal(run, step, batch):
        row = train_step(run, step, batch)
        if step == at:
            signal.raise_signal(sig)
        return row

    return step_then_signal


def dead_pid() -> int:
    """The pid of a process that has exited (a killed writer's)."""
    import subprocess
    import sys

    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def legacy_gather_copy(folder: Path, name: str, host: str, pid: int, age: float = 0.0) -> Path:
    """An old-format gather copy `.NAME.full-HOST-PID.pt` of sharded checkpoint `name` (which need not exist: rotated
    away) in `folder`, 2 KiB, last modified `age` seconds ago."""
    import os
    import time

    p = folder / f".{name}.full-{host}-{pid}.pt"
    p.write_bytes(b"x" * 2048)
    if age:
        t = time.time() - age
        os.utime(p, (t, t))
    return p


# the one student of the distillation resume tests: a 1-block vit_tiny (a `_cfg` override of tests/train/test_distill)
ONE_STUDENT = "students=[{name: tiny, arch: vit_tiny, drop_path_rate: 0.0, overrides: {depth: 1, n_storage_tokens: 1}}]"


@pytest.fixture(scope="module")
def finished_distill(images, tmp_path_factory) -> Path:
    """The run folder of a finished 2-step distillation of `ONE_STUDENT` on `images` (one per test module)."""
    from geodino.train.distill import distill
    from tests.train.test_distill import _cfg

    out = tmp_path_factory.mktemp("finished") / "run"
    distill(_cfg(images, out, ONE_STUDENT))
    return out


@pytest.fixture(scope="module")
def copied_distill(images, tmp_path_factory) -> tuple[Path, Path]:
    """A finished 2-step distillation of `ONE_STUDENT` on a copy of `images` (its data folder, its run folder; one
    per test module): `killed_copy` makes it one stopped after step 1, the copied data can be moved."""
    import shutil

    from geodino.train.distill import distill
    from tests.train.test_distill import _cfg

    root = tmp_path_factory.mktemp("copied")
    data = shutil.copytree(images, root / "old" / "imgs")
    distill(_cfg(data, root / "run", ONE_STUDENT))
    return data, root / "run"


def killed_copy(run: Path, dest: Path) -> Path:
    """A copy at `dest` of finished 2-step run `run` as if killed after step 1's checkpoint."""
    import shutil

    shutil.copytree(run, dest)
    (dest / "checkpoints" / "step_00000002.ckpt").unlink()
    return dest


@pytest.fixture
def listings(monkeypatch) -> list[str]:
    """Every path `geodino.train.resume_paths.listing_digest` is asked to list (a spy: it still lists)."""
    import geodino.train.resume_paths as rp

    calls: list[str] = []
    real = rp.listing_digest

    def spy(path: str) -> str | None:
        calls.append(path)
        return real(path)

    monkeypatch.setattr(rp, "listing_digest", spy)
    return calls
