"""The run folder's lock file (`.geodino.lock`): held while a run works in the folder, removed when the lock is
given up normally (a run that ended, a failed start, interpreter exit), so no finished or failed run leaves it."""

from __future__ import annotations

import fcntl
import subprocess
import sys
from pathlib import Path

import pytest

from geodino.cli import main
from geodino.errors import InputError
from geodino.run_lock import lock_run_folder, release_run_folder
from tests.train.conftest import write_config, write_rasters

ROOT = Path(__file__).resolve().parents[2]
LOCK = ".geodino.lock"


def can_lock(folder: Path) -> bool:
    """Whether another open file (as another process would) can take the folder's lock now."""
    with open(folder / LOCK, "a+") as other:
        try:
            fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False
        fcntl.flock(other, fcntl.LOCK_UN)
    (folder / LOCK).unlink()
    return True


def run_python(code: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=300)


def test_a_failed_pretrain_start_leaves_no_lock_file_and_frees_the_folder(tmp_path, capsys):
    """A pretrain that failed at start-up (after taking the lock) left `.geodino.lock` in an output folder that
    existed before, and this process kept the folder locked until it exited (a notebook kernel: for ever)."""
    data = write_rasters(tmp_path / "data", bands=5)  # 5 bands for a 3-band student: fails after the lock
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    assert main(["pretrain", "--config", str(write_config(tmp_path / "c.yaml", out, data))]) == 2
    assert "5 unnamed bands" in capsys.readouterr().err
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert can_lock(out)  # released, not only unlinked
    new = tmp_path / "new" / "run"  # a folder made for the failed start is removed with its lock
    assert main(["pretrain", "--config", str(write_config(tmp_path / "d.yaml", new, data))]) == 2
    assert not (tmp_path / "new").exists()
    new.mkdir(parents=True)  # this process locks that folder again for real (no stale entry from the failed start)
    lock_run_folder(new)
    assert (new / LOCK).exists() and not can_lock(new)
    release_run_folder(new)


def test_a_finished_pretrain_leaves_no_lock_file(tiny_run):
    assert not (tiny_run / LOCK).exists() and can_lock(tiny_run)


def test_release_removes_only_its_own_lock_and_the_folder_can_be_taken_again(tmp_path):
    out = tmp_path / "run"
    out.mkdir()
    release_run_folder(out)  # not held: nothing happens
    lock_run_folder(out)
    assert (out / LOCK).read_text().startswith("pid ") and not can_lock(out)
    lock_run_folder(out)  # held already: a no-op
    release_run_folder(out)
    assert not (out / LOCK).exists()
    with open(out / LOCK, "w") as other:  # another run holds it: refused, and its file is left alone
        other.write("pid 4242")
        other.flush()
        fcntl.flock(other, fcntl.LOCK_EX | fcntl.LOCK_NB)
        with pytest.raises(InputError, match=r"in use by another run \(pid 4242\)"):
            lock_run_folder(out)
        release_run_folder(out)
        assert (out / LOCK).read_text() == "pid 4242"
    lock_run_folder(out)
    release_run_folder(out)
    assert not (out / LOCK).exists()


def test_a_process_that_exits_without_releasing_leaves_no_lock_file(tmp_path):
    """Callers that do not release (distill) or end with an error: the lock is released at interpreter exit."""
    out = tmp_path / "run"
    out.mkdir()
    code = "from pathlib import Path\nfrom geodino.run_lock import lock_run_folder\n"
    code += f"lock_run_folder(Path({str(out)!r}))\nraise SystemExit(2)\n"
    p = run_python(code)
    assert p.returncode == 2, p.stderr
    assert list(out.iterdir()) == []


def test_a_failed_distill_start_leaves_no_lock_file(tmp_path):
    """distill takes the lock before it loads the teacher; a student whose patch size differs from the teacher's
    fails after that (exit 2): neither the existing folder nor a new one keeps a lock file."""
    from PIL import Image

    (tmp_path / "imgs").mkdir()
    Image.new("RGB", (40, 40)).save(tmp_path / "imgs" / "a.png")
    out = tmp_path / "run"
    out.mkdir()
    (out / "notes.txt").write_text("mine")
    heads = "{head_n_prototypes: 64, head_hidden_dim: 32, head_bottleneck_dim: 16}"
    common = [
        "teacher.spec=arch:vit_tiny?seed=0&patch_size=8&depth=1",
        f"dino={heads}",
        f"ibot={heads}",
        f"data.sources=[{{type: images, paths: [{tmp_path / 'imgs'}], sensor: imagenet}}]",
        "crops={global_size: 32, local_size: 16, n_local: 2, rot90: false}",
        "students=[{name: s, arch: vit_tiny, patch_size: 16, overrides: {depth: 1}}]",
        "train.max_steps=1",
        "train.global_batch_size=2",
        "train.num_workers=0",
        "train.device=cpu",
    ]
    for folder in (out, tmp_path / "new" / "run"):
        argv = ["distill", f"output_dir={folder}", *common]
        p = run_python(f"import sys\nfrom geodino.cli import main\nsys.exit(main({argv!r}))\n")
        assert p.returncode == 2 and "patch_size=16 differs from the teacher's patch size 8" in p.stderr, p.stderr
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt"]
    assert not (tmp_path / "new").exists()
