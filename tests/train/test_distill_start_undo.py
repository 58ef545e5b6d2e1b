"""A refused distillation start leaves the file system as it was. It left the missing folders above a new `out`
behind (only `out` itself was removed), trained without a word on data whose every pixel is nodata, and in a used
run folder it had already removed a killed run's half-written checkpoint, rewritten config.yaml and dropped log rows
when the data, the band count or the resume checkpoint was refused. Now the data's first batch is read before
anything is written, the used folder's housekeeping waits until the start is accepted, a rewritten config.yaml gets
its earlier bytes back, and the empty folders the call made are removed (as `pretrain` does)."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from geodino.errors import CheckpointError, ConfigError, InputError
from geodino.train.distill import distill
from tests.train.conftest import NODATA
from tests.train.test_distill import TEACHER, _cfg

BANDS = f"the data has 12 bands per image but the teacher {TEACHER} takes 3"


def _cases(tmp_path: Path, blank: Path) -> dict[str, tuple[list[str], type, str]]:
    """{kind: (overrides, error, the start of its line)}: start failures after the run folder is taken."""
    (tmp_path / "text.pth").write_text("not a checkpoint")
    return {
        "teacher file missing": (
            [f"teacher.spec={tmp_path / 'gone.pth'}"],
            CheckpointError,
            f"backbone checkpoint {tmp_path / 'gone.pth'} not found",
        ),
        "teacher file unreadable": (
            [f"teacher.spec={tmp_path / 'text.pth'}"],
            CheckpointError,
            f"checkpoint {tmp_path / 'text.pth'} cannot be read",
        ),
        "no heads and no warm-up": (["teacher.head_warmup_steps=0"], ConfigError, f"teacher {TEACHER} has no DINO"),
        "band count (warm-up)": (
            ["data.sources=[{type: synthetic, sensor: sentinel2_l2a, tile_size: 40}]"],
            InputError,
            BANDS,
        ),
        "missing data (warm-up)": (
            ["data.sources=[{type: images, paths: [/no/such/dir]}]"],
            InputError,
            "image path /no/such/dir does not exist",
        ),
        "all nodata": (
            [f"data.sources=[{{type: raster, paths: [{blank}], tile_size: 48, sensor: imagenet}}]"],
            InputError,
            f"source 'source0' ({blank / 'z.tif'}): {NODATA}",
        ),
    }


KINDS = [
    "teacher file missing",
    "teacher file unreadable",
    "no heads and no warm-up",
    "band count (warm-up)",
    "missing data (warm-up)",
    "all nodata",
]


@pytest.mark.parametrize("kind", KINDS)
def test_a_refused_start_leaves_no_folder_above_out(images, blank, tmp_path, kind) -> None:
    extra, error, line = _cases(tmp_path, blank)[kind]
    with pytest.raises(error) as err:
        distill(_cfg(images, tmp_path / "a" / "b" / "run", "teacher.head_warmup_steps=1", *extra))
    assert str(err.value).startswith(line) and "\n" not in str(err.value)
    assert not (tmp_path / "a").exists(), sorted(str(p) for p in (tmp_path / "a").rglob("*"))


def _used_folder(out: Path) -> dict[str, bytes]:
    """A folder an earlier run used: its config.yaml, log rows, a half-written checkpoint, a note of the user's."""
    (out / "checkpoints").mkdir(parents=True)
    (out / "config.yaml").write_text("name: earlier\n")
    (out / "log.csv").write_text("step,loss\n0,9.0\n1,8.5\n2,8.0\n")
    (out / "checkpoints" / ".step_00000003.ckpt.tmp-9").write_text("half")
    (out / "notes.txt").write_text("mine")
    return _snapshot(out)


def _snapshot(out: Path) -> dict[str, bytes]:
    return {p.relative_to(out).as_posix(): p.read_bytes() for p in sorted(out.rglob("*")) if p.is_file()}


@pytest.mark.parametrize("kind", ["band count (warm-up)", "missing data (warm-up)", "all nodata"])
def test_a_used_run_folder_is_left_as_it_was(images, blank, tmp_path, kind) -> None:
    extra, error, line = _cases(tmp_path, blank)[kind]
    out = tmp_path / "used"
    before = _used_folder(out)
    with pytest.raises(error) as err:
        distill(_cfg(images, out, *extra))
    assert str(err.value).startswith(line)
    assert _snapshot(out) == before


def test_a_resume_checkpoint_refused_late_leaves_the_folder_as_it_was(images, tmp_path) -> None:
    """The newest checkpoint is not one of distill's: named only when the run loads it (after config.yaml was
    written and the heads warmed up); config.yaml gets its earlier bytes back, the half-written checkpoint and the
    log rows stay. The warmed-up heads are kept on purpose (the next start reuses them)."""
    out = tmp_path / "used"
    _used_folder(out)
    torch.save({"step": 1}, out / "checkpoints" / "step_00000001.ckpt")
    before = _snapshot(out)
    with pytest.raises(CheckpointError, match=r"step_00000001\.ckpt was not written by geodino distill"):
        distill(_cfg(images, out, "teacher.head_warmup_steps=1"))
    after = _snapshot(out)
    assert after.pop("teacher.heads.pth")
    assert after == before


ONE_STUDENT = [
    "teacher.head_warmup_steps=1",
    "students=[{name: tiny, arch: vit_tiny, drop_path_rate: 0.0, overrides: {depth: 1, n_storage_tokens: 1}}]",
]


@pytest.fixture(scope="module")
def finished(images, tmp_path_factory) -> Path:
    """A finished 2-step run of one student (checkpoints of steps 1 and 2, the warmed-up heads, the export)."""
    out = tmp_path_factory.mktemp("finished") / "run"
    distill(_cfg(images, out, *ONE_STUDENT))
    return out


@pytest.mark.parametrize(("kind", "reads"), [("finished", 0), ("killed after step 1", 2)])
def test_a_rerun_reads_a_batch_only_when_it_trains(finished, images, tmp_path, monkeypatch, kind, reads) -> None:
    """A re-run of a finished run trains nothing: it read one batch anyway to check the data (the probe). Now it
    reads none and still exports; a run killed after step 1 reads the probe's batch and step 1's (the heads are
    reused: no warm-up batch)."""
    import shutil

    import geodino.data.loaders as loaders

    out = tmp_path / "run"
    shutil.copytree(finished, out)
    if kind != "finished":
        (out / "checkpoints" / "step_00000002.ckpt").unlink()
    steps: list[int] = []
    collate = loaders.collate_ssl
    monkeypatch.setattr(
        loaders, "collate_ssl", lambda samples, **kw: steps.append(kw["step"]) or collate(samples, **kw)
    )
    exports = distill(_cfg(images, out, *ONE_STUDENT))
    assert len(steps) == reads, steps
    assert list(exports) == ["tiny"] and exports["tiny"].is_file()


def test_a_config_yaml_that_cannot_be_put_back_is_named_with_its_copy(images, tmp_path, monkeypatch) -> None:
    """The late resume refusal, with the rename that puts config.yaml's earlier bytes back failing: the refusal is
    still the error raised, and one warning line names config.yaml and where its earlier bytes are kept (the restore
    failed without a word and the earlier config.yaml was lost)."""
    import os

    import geodino.io as io

    out = tmp_path / "used"
    _used_folder(out)
    torch.save({"step": 1}, out / "checkpoints" / "step_00000001.ckpt")
    replace = os.replace

    def no_restore(src, dst):  # the start's own writes go through; putting the earlier bytes back does not
        if Path(dst) == out / "config.yaml" and Path(src).read_bytes() == b"name: earlier\n":
            raise PermissionError(13, "Permission denied", str(dst))
        return replace(src, dst)

    monkeypatch.setattr(io.os, "replace", no_restore)
    with pytest.warns(UserWarning) as said, pytest.raises(CheckpointError, match="was not written by geodino distill"):
        distill(_cfg(images, out, "teacher.head_warmup_steps=1"))
    (line,) = [str(w.message) for w in said if "was not put back" in str(w.message)]
    assert line.startswith(f"{out / 'config.yaml'} was not put back as it was before this start (Permission denied)")
    copy = Path(line.split("its earlier content is in ")[1].split("; ")[0])
    assert copy.read_bytes() == b"name: earlier\n" and "\n" not in line
    copy.unlink()
    assert sorted(p.name for p in out.iterdir() if p.name.startswith(".config")) == []  # no stray write temporary
