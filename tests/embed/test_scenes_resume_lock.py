"""A resumed many-scene run checks a started scene under that scene's output lock: a scene another process is
writing is refused as "being written by another run" (its pid), not judged from the other run's work folder
(which told the user its settings differ and to pass --overwrite, or read a folder mid-rewrite)."""

from __future__ import annotations

import subprocess
import sys
import time

import pytest
from rasterio.transform import from_origin

from geodino.embed import embed_raster, embed_scenes
from geodino.errors import InputError
from tests.embed.conftest import random_image, write_tif

OPTS = {"tile": 32, "overlap": 8, "progress": False}

_HOLD = """
import sys, time
from pathlib import Path
from geodino.run_lock import locked_output
with locked_output(Path(sys.argv[1])):
    print("held", flush=True)
    time.sleep(60)
"""


def _scenes(root):
    root.mkdir(parents=True)
    for k, name in enumerate(("a", "b")):
        write_tif(
            root / f"{name}.tif", random_image(64, 64, seed=k), transform=from_origin(500000 + 800 * k, 4e6, 10, 10)
        )
    return root


@pytest.fixture
def holder():
    procs = []

    def hold(path):
        proc = subprocess.Popen([sys.executable, "-c", _HOLD, str(path)], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


def test_a_scene_another_run_writes_is_refused_as_locked_not_judged(tmp_path, conv_bb, holder):
    scenes = _scenes(tmp_path / "scenes")
    out = tmp_path / "feats"
    # another run (tile 64) is writing scene b: its work folder is there and it holds b's lock
    embed_raster(scenes / "b.tif", conv_bb, out / "b.tif", world_size=2, rank=0, **{**OPTS, "tile": 64, "overlap": 16})
    proc = holder(out / "b.tif")
    t0 = time.monotonic()
    with pytest.raises(InputError, match=rf"b\.tif is being written by another run \(pid {proc.pid}") as err:
        embed_scenes(scenes, backbone=conv_bb, out=out, resume=True, **OPTS)
    assert "other settings" not in str(err.value)
    assert time.monotonic() - t0 < 30
    assert not (out / "a.tif").exists()  # refused before any scene is written, as a settings mismatch is


def test_the_lock_is_free_again_after_the_checks_and_the_run(tmp_path, conv_bb):
    """Checks under the lock do not leave it held: a resume finishes every scene, and a second resume is free."""
    scenes = _scenes(tmp_path / "scenes")
    out = tmp_path / "feats"
    embed_raster(scenes / "b.tif", conv_bb, out / "b.tif", world_size=2, rank=0, **OPTS)  # b started
    (mosaic,) = embed_scenes(scenes, backbone=conv_bb, out=out, resume=True, **OPTS)
    assert (out / "a.tif").exists() and (out / "b.tif").exists() and mosaic.exists()
    assert not list(out.glob(".*.geodino.lock"))
    assert embed_scenes(scenes, backbone=conv_bb, out=out, resume=True, **OPTS) == [mosaic]
