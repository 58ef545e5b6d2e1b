"""`undo_start` puts a replaced file's earlier bytes back best-effort while the start's own error propagates. A
restore that failed was silent (`contextlib.suppress(OSError)`) and the earlier file was lost without a word; now it
is one warning line naming the file and where its earlier bytes are: a copy in the temporary folder, else a copy
beside the file under its temporary name."""

from __future__ import annotations

import contextlib
import os
import tempfile
from pathlib import Path

import pytest

import geodino.io as io
from geodino.cli import _one_line_warning
from geodino.errors import InputError
from geodino.train.run_start import Start, undo_start

EARLIER = b"name: earlier\n"


def _refused_start(out: Path, monkeypatch, fails: str) -> list[str]:
    """A start that replaced out/config.yaml and out/notes.txt and made out/schedules.png, then is refused while
    putting config.yaml back fails (`fails`: "rename", the write's rename; "rename, copy", the temporary copy too;
    "write, copy", the write, the copy and the copy beside it): the warnings as the CLI prints them."""
    out.mkdir()
    (out / "config.yaml").write_bytes(EARLIER)
    (out / "notes.txt").write_bytes(b"mine")
    start = Start()
    start.keep(out / "config.yaml", out / "notes.txt", out / "schedules.png")
    for name in ("config.yaml", "notes.txt", "schedules.png"):
        (out / name).write_bytes(b"this start's")
    replace, atomic_path = os.replace, io.atomic_path

    def no_rename(src, dst):
        if Path(dst) == out / "config.yaml":
            raise PermissionError(13, "Permission denied", str(dst))
        return replace(src, dst)

    @contextlib.contextmanager
    def no_write(path, **kwargs):
        if Path(path) == out / "config.yaml":
            raise PermissionError(13, "Permission denied", str(path))
        with atomic_path(path, **kwargs) as tmp:
            yield tmp

    def no_copy(*args, **kwargs):
        raise OSError(28, "No space left on device")

    write_bytes = Path.write_bytes

    def no_write_in_out(self, data):  # the copy beside config.yaml fails too
        if self == io.temp_name(out / "config.yaml"):
            raise PermissionError(13, "Permission denied", str(self))
        return write_bytes(self, data)

    if fails.startswith("rename"):
        monkeypatch.setattr(io.os, "replace", no_rename)
    else:
        monkeypatch.setattr(io, "atomic_path", no_write)
        monkeypatch.setattr(Path, "write_bytes", no_write_in_out)
    if "copy" in fails:
        monkeypatch.setattr(tempfile, "mkstemp", no_copy)
    with pytest.warns(UserWarning) as said, pytest.raises(InputError) as err:
        try:
            raise InputError("refused for the test")
        except InputError:
            undo_start(out, start)
            raise
    monkeypatch.undo()
    assert str(err.value) == "refused for the test"  # the start's own error is the one raised
    assert (out / "notes.txt").read_bytes() == b"mine" and not (out / "schedules.png").exists()  # the rest undone
    return [_one_line_warning(w.message, w.category, w.filename, w.lineno) for w in said]


def _head(out: Path) -> str:
    return f"geodino: warning: {out / 'config.yaml'} was not put back as it was before this start (Permission denied); "


def test_a_file_that_cannot_be_put_back_is_one_line_naming_its_copy(tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"
    (line,) = _refused_start(out, monkeypatch, "rename")
    assert line.startswith(_head(out)) and line.endswith("; copy it back by hand\n") and line.count("\n") == 1
    copy = Path(line[len(_head(out)) :].removeprefix("its earlier content is in ").split("; ")[0])
    assert copy.parent == Path(tempfile.gettempdir()) and copy.read_bytes() == EARLIER
    copy.unlink()
    assert sorted(p.name for p in out.iterdir()) == ["config.yaml", "notes.txt"]  # no write temporary left beside


def test_without_a_copy_the_writes_temporary_is_named(tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"
    (line,) = _refused_start(out, monkeypatch, "rename, copy")
    (beside,) = [p for p in out.iterdir() if p.name.startswith(".config.tmp-")]
    assert beside.read_bytes() == EARLIER
    said = f"its earlier content is in {beside}; copy it back by hand before a next run there removes it\n"
    assert line == _head(out) + said


def test_a_copy_that_cannot_be_made_is_said(tmp_path, monkeypatch) -> None:
    out = tmp_path / "run"
    (line,) = _refused_start(out, monkeypatch, "write, copy")
    assert line == f"{_head(out)}its earlier content could not be copied (No space left on device)\n"
