"""Temporaries of killed runs are swept when the next write of the same target starts: a process killed inside
`atomic_path` left its `.STEM.tmp-...` file or folder forever (a 3 GB Zarr store temporary, probe feature-cache
files, curation parts, the hidden set folder of `viz attention`). Only those of writers that are gone go: a live
writer's (here, or on another host sharing the folder) and other targets' stay."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from geodino import io

KILLED = """
import os, signal, sys
from pathlib import Path
from geodino.io import atomic_path
target = Path(sys.argv[1])
with atomic_path(target) as tmp:
    if target.suffix == ".zarr":
        (tmp / "c").mkdir(parents=True)
        (tmp / "c" / "0.0").write_bytes(b"x" * 3000)
    else:
        tmp.write_bytes(b"half")
    print(tmp, flush=True)
    if sys.argv[2] == "kill":
        os.kill(os.getpid(), signal.SIGKILL)
    sys.stdin.read()  # a live writer: waits until the test closes its stdin
"""


def killed_writer(target: Path) -> Path:
    """The temporary a writer of `target` left when it was killed mid-write (its process is gone)."""
    run = subprocess.run([sys.executable, "-c", KILLED, str(target), "kill"], capture_output=True, text=True)
    assert run.returncode == -9, run.stderr
    tmp = Path(run.stdout.strip())
    assert tmp.exists() and tmp.parent == target.parent
    return tmp


@pytest.fixture
def live_writer():
    """Start a writer of a target that stays alive, mid-write; yields (its temporary, its pid)."""
    procs: list[subprocess.Popen] = []

    def start(target: Path) -> tuple[Path, int]:
        p = subprocess.Popen(
            [sys.executable, "-c", KILLED, str(target), "live"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        procs.append(p)
        return Path(p.stdout.readline().strip()), p.pid

    yield start
    for p in procs:
        p.kill()
        p.wait()


def dead_pid() -> int:
    p = subprocess.Popen([sys.executable, "-c", "pass"])
    p.wait()
    return p.pid


def write(target: Path, data: bytes = b"new") -> None:
    with io.atomic_path(target) as tmp:
        tmp.write_bytes(data)


def test_a_killed_writers_temporary_is_removed_on_the_next_write_and_said_once(tmp_path, capsys):
    target = tmp_path / "features.safetensors"
    left = killed_writer(target)
    capsys.readouterr()
    write(target)
    assert not left.exists() and target.read_bytes() == b"new"
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"geodino: removed 1 temporary of a killed run: {left.name} (4 bytes)"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["features.safetensors"]
    write(target)  # nothing left to remove: nothing said
    assert capsys.readouterr().err == ""


def test_a_killed_writers_store_folder_is_removed_with_its_size(tmp_path, capsys):
    target = tmp_path / "features.zarr"
    left = killed_writer(target)
    assert left.is_dir()
    capsys.readouterr()
    with io.atomic_path(target) as tmp:
        tmp.mkdir()
    assert not left.exists() and target.is_dir()
    assert f"removed 1 temporary of a killed run: {left.name} (3.0 kB)" in capsys.readouterr().err


def test_a_live_writers_temporary_and_other_targets_are_kept(tmp_path, live_writer, capsys):
    target = tmp_path / "o.tif"
    live, pid = live_writer(target)
    parents = target.with_name(live.name.replace(f"-{pid}.", f"-{os.getppid()}."))  # the test's parent: alive
    parents.write_bytes(b"p")
    others = [killed_writer(tmp_path / "other.tif"), killed_writer(tmp_path / "o2.tif")]
    others.append(killed_writer(tmp_path / "o.png"))
    dead = killed_writer(target)
    capsys.readouterr()
    write(target)
    assert live.exists() and parents.exists() and all(p.exists() for p in others)
    assert not dead.exists()  # only the killed writer's temporary of this target went
    assert capsys.readouterr().err.count("removed 1 temporary") == 1


def test_derived_names_and_a_set_aside_earlier_output_of_a_killed_run(tmp_path):
    target = tmp_path / "o.tif"
    left = killed_writer(target)
    overview = left.with_name(left.name + ".L0.tif")  # GDAL's overview file of the temporary COG
    overview.write_bytes(b"ovr")
    tag, pid = io.writer_tag(), dead_pid()
    aside = tmp_path / f".o.tif.old-{tag}-{pid}"
    aside.mkdir()
    write(target)  # the target was absent: the aside may be the only whole copy of the earlier output, kept
    assert not left.exists() and not overview.exists() and aside.exists()
    write(target)  # now the target is in place: the aside is a killed swap's leftover
    assert not aside.exists()


def test_other_hosts_and_untagged_temporaries_go_only_when_untouched_for_a_day(tmp_path, live_writer):
    target = tmp_path / "o.tif"
    pid = dead_pid()
    elsewhere = tmp_path / f".o.tmp-node07_0badc0de-{pid}.tif"  # a pid dead here may be alive on node07
    untagged = tmp_path / f".o.tmp-{pid}.tif"  # an older geodino's name
    _, live = live_writer(tmp_path / "x.tif")
    untagged_live = tmp_path / f".o.tmp-{live}.tif"
    for p in (elsewhere, untagged, untagged_live):
        p.write_bytes(b"t")
    write(target)
    assert elsewhere.exists() and untagged.exists() and untagged_live.exists()
    day_ago = time.time() - io.STALE_AFTER_S - 60
    for p in (elsewhere, untagged, untagged_live):
        os.utime(p, (day_ago, day_ago))
    write(target)
    assert not elsewhere.exists() and not untagged.exists()
    assert untagged_live.exists()  # its pid runs here: it may be its writer


def test_an_other_hosts_store_still_written_inside_is_kept(tmp_path):
    store = tmp_path / f".f.tmp-node07_0badc0de-{dead_pid()}.zarr"
    (store / "c").mkdir(parents=True)
    day_ago = time.time() - io.STALE_AFTER_S - 60
    os.utime(store / "c", (day_ago, day_ago))
    os.utime(store, (day_ago, day_ago))
    (store / "c" / "0.0").write_bytes(b"fresh chunk")  # the folder's own times say nothing of its chunks
    quiet = tmp_path / f".f.tmp-node08_0badc0de-{dead_pid()}.zarr"  # written a day ago, not since: a killed run's
    (quiet / "c").mkdir(parents=True)
    for p in (quiet / "c", quiet):
        os.utime(p, (day_ago, day_ago))
    assert io.sweep_temps(tmp_path / "f.zarr") == [quiet]
    assert store.exists()


def test_viz_attention_sweeps_the_hidden_set_folder_of_a_killed_run(tmp_path, live_writer):
    from PIL import Image

    from geodino import cli
    from tests.embed.conftest import random_image

    Image.fromarray(random_image(32, 32).transpose(1, 2, 0)).save(tmp_path / "a.png")
    out = tmp_path / "v"
    out.mkdir()
    stage = killed_writer(out / "attention")  # the name the set folder of a killed run has
    live, _ = live_writer(out / "attention")
    assert (
        cli.main(["viz", "attention", str(tmp_path / "a.png"), "-b", "arch:vit_tiny?depth=1&seed=0", "-o", str(out)])
        == 0
    )
    assert not stage.exists() and live.exists() and (out / "attention.json").exists()


def test_sweep_false_leaves_the_folder_to_a_writer_that_swept_it_once(tmp_path, capsys, monkeypatch):
    """A writer of many files into one folder sweeps it once itself (a sweep per file is quadratic)."""
    target = tmp_path / "map0_000001.npy"
    left = killed_writer(target)
    capsys.readouterr()
    with io.atomic_path(target, durable=False, sweep=False) as tmp:
        tmp.write_bytes(b"new")
    assert left.exists() and target.read_bytes() == b"new" and capsys.readouterr().err == ""
    # the probes' disk feature cache: its chunk files are written so, after one sweep of the folder at the start
    import numpy as np

    from geodino.eval import head_training

    swept: list[Path] = []
    monkeypatch.setattr(io, "sweep_temps", lambda path: swept.append(path))
    for c in range(3):
        head_training._write_whole(tmp_path / f"cls0_{c:06d}.npy", np.zeros(4, np.float16))
    assert swept == [] and np.load(tmp_path / "cls0_000002.npy").shape == (4,)
