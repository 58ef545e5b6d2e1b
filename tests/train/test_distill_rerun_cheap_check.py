"""A finished distillation's re-run decides whether to keep each export as pretraining does
(`geodino.train.finished_run.export_is_current`: file times and the STAC item, no export written to compare), and a
start sweeps the staging folders earlier geodino versions left in the run folder (`run_folder.sweep_old_staging`:
tempfile-named `.NAME.export-check-XXXXXXXX` and `.data-stamp-XXXXXXXX` folders, and the `temp_name`-named ones of
writers that are gone), never a folder of another name."""

from __future__ import annotations

import os
import shutil

import pytest

import geodino.train.distill.finish as finish
from geodino.io_temps import writer_tag
from geodino.train.distill import distill
from tests.train.conftest import ONE_STUDENT, dead_pid
from tests.train.test_distill import _cfg


@pytest.fixture
def exports(monkeypatch) -> list[str]:
    """The students `finish.export_student` is asked to export (a spy: it still exports)."""
    calls: list[str] = []
    real = finish.export_student

    def spy(arch, name, *args, **kwargs):
        calls.append(name)
        return real(arch, name, *args, **kwargs)

    monkeypatch.setattr(finish, "export_student", spy)
    return calls


def test_a_current_export_is_not_written_again(finished_distill, images, tmp_path, exports) -> None:
    out = shutil.copytree(finished_distill, tmp_path / "run")  # copy2: the file times come along
    distill(_cfg(images, out, ONE_STUDENT))
    assert exports == []  # nothing staged or compared: the files and the item say it is current


def test_an_export_older_than_the_final_checkpoint_is_written_again(finished_distill, images, tmp_path, exports):
    out = shutil.copytree(finished_distill, tmp_path / "run")
    final = out / "checkpoints" / "step_00000002.ckpt"
    later = (out / "tiny" / "tiny.pth").stat().st_mtime + 10
    os.utime(final, (later, later))
    distill(_cfg(images, out, ONE_STUDENT))
    assert exports == ["tiny"]


def test_a_start_sweeps_earlier_versions_staging_folders(finished_distill, images, tmp_path) -> None:
    out = shutil.copytree(finished_distill, tmp_path / "run")
    tag, dead = writer_tag(), dead_pid()
    gone = [
        f".tiny.export-check-{'a1b2_c3d'}",  # tempfile.TemporaryDirectory(prefix=".tiny.export-check-")
        ".data-stamp-zz9_x8y7",  # tempfile.TemporaryDirectory(prefix=".data-stamp-")
        f".tiny.tmp-{tag}-{dead}.export-check",  # temp_name(tiny.export-check) of a killed re-run
        f".data_paths.tmp-{tag}-{dead}.json.stage",  # the stamp temporary's .stage of a killed start
    ]
    kept = [
        ".tiny.export-check-notes",  # not tempfile's 8 characters
        ".data-stamp-ABCDEFGH",  # not tempfile's alphabet
        ".other.export-check-abcdefgh",  # no student of this run
        f".tiny.tmp-{tag}-{os.getpid()}.export-check",  # a live writer's
        "data-stamp-abcdefgh",  # not hidden
    ]
    for name in gone + kept:
        (out / name / "tiny").mkdir(parents=True)
        (out / name / "tiny" / "tiny.pth").write_bytes(b"x" * 64)
    (out / ".data-stamp-abcdefgh").write_bytes(b"a file, not a staging folder")
    distill(_cfg(images, out, ONE_STUDENT))
    assert [n for n in gone if (out / n).exists()] == []
    assert [n for n in kept if not (out / n / "tiny" / "tiny.pth").is_file()] == []
    assert (out / ".data-stamp-abcdefgh").is_file()
