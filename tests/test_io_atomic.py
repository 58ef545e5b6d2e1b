"""`atomic_path` leaves no temporary behind when its write fails: a rename that failed left the finished
`.STEM.tmp-...` file or folder beside the target (until a later run's sweep), and a folder whose swap failed halfway
was left under its aside name, the target gone. Now the temporary is removed, an earlier folder is put back, and
the error is the one raised, unchanged. (The success path: tests/test_io.py, test_file_appears_only_on_success and
test_folder_replaced_atomically.)"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from geodino.io import atomic_path


def _failing_rename(monkeypatch, fails) -> OSError:
    """Make `os.replace` (what `atomic_path` renames with) raise for the renames `fails(src, dst)` picks; the error."""
    replace = os.replace
    err = OSError(5, "Input/output error")

    def flaky(src, dst, **kwargs):
        if fails(Path(src), Path(dst)):
            raise err
        return replace(src, dst, **kwargs)

    monkeypatch.setattr(os, "replace", flaky)
    return err


def _names(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir())


@pytest.mark.parametrize("earlier", [False, True], ids=["new", "replacing"])
def test_a_file_whose_rename_fails_leaves_no_temporary(tmp_path, monkeypatch, earlier) -> None:
    target = tmp_path / "out.tif"
    if earlier:
        target.write_bytes(b"earlier")
    err = _failing_rename(monkeypatch, lambda src, dst: dst == target)
    with pytest.raises(OSError) as raised:
        with atomic_path(target) as tmp:
            tmp.write_bytes(b"new")
    assert raised.value is err  # the rename's own error, unchanged
    assert _names(tmp_path) == (["out.tif"] if earlier else [])  # no .out.tmp-... beside it
    if earlier:
        assert target.read_bytes() == b"earlier"
    monkeypatch.undo()
    with atomic_path(target) as tmp:  # the next write goes through
        tmp.write_bytes(b"new")
    assert target.read_bytes() == b"new" and _names(tmp_path) == ["out.tif"]


@pytest.mark.parametrize("step", ["aside", "swap"])
def test_a_folder_whose_swap_fails_is_put_back_and_leaves_no_temporary(tmp_path, monkeypatch, step) -> None:
    """`aside`: moving the earlier store away fails; `swap`: moving the new one in fails, after the earlier one was
    set aside (it was left under `.store.zarr.old-...`, the target gone)."""
    target = tmp_path / "store.zarr"
    target.mkdir()
    (target / "old").write_text("1")
    if step == "aside":
        err = _failing_rename(monkeypatch, lambda src, dst: src == target)
    else:
        err = _failing_rename(monkeypatch, lambda src, dst: dst == target and src.name.startswith(".store.tmp-"))
    with pytest.raises(OSError) as raised:
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "new").write_text("2")
    assert raised.value is err
    assert _names(tmp_path) == ["store.zarr"] and _names(target) == ["old"] and (target / "old").read_text() == "1"


def test_a_folder_that_cannot_be_put_back_is_said_and_kept(tmp_path, monkeypatch, capsys) -> None:
    target = tmp_path / "store.zarr"
    target.mkdir()
    (target / "old").write_text("1")
    err = _failing_rename(monkeypatch, lambda src, dst: dst == target)  # the swap and the putting back
    with pytest.raises(OSError) as raised:
        with atomic_path(target) as tmp:
            tmp.mkdir()
            (tmp / "new").write_text("2")
    assert raised.value is err
    (aside,) = tmp_path.iterdir()  # no temporary; the earlier store under its aside name, whole
    assert aside.name.startswith(".store.zarr.old-") and _names(aside) == ["old"]
    said = f"geodino: {target} could not be put back (Input/output error); its earlier content is in {aside}\n"
    assert capsys.readouterr().err == said


def test_files_replaced_in_the_working_folder_leave_no_temporary(tmp_path, monkeypatch) -> None:
    """A folder output that is the working folder has its files renamed in one by one; one that fails."""
    target = tmp_path / "model"
    target.mkdir()
    (target / "config.json").write_text("{}")
    monkeypatch.chdir(target)
    err = _failing_rename(monkeypatch, lambda src, dst: dst.name == "config.json")
    with pytest.raises(OSError) as raised:
        with atomic_path(".", replaces=lambda p: None) as tmp:
            tmp.mkdir()
            (tmp / "config.json").write_text('{"new": 1}')
    assert raised.value is err
    assert _names(tmp_path) == ["model"] and _names(target) == ["config.json"]


@pytest.mark.parametrize("kind", ["file", "folder"])
def test_a_body_that_raises_leaves_no_temporary(tmp_path, kind) -> None:
    target = tmp_path / ("out.tif" if kind == "file" else "store.zarr")
    err = RuntimeError("killed")
    with pytest.raises(RuntimeError) as raised:
        with atomic_path(target) as tmp:
            if kind == "file":
                tmp.write_bytes(b"half")
            else:
                (tmp / "c").mkdir(parents=True)
                (tmp / "c" / "0").write_bytes(b"half")
            raise err
    assert raised.value is err and _names(tmp_path) == []


@pytest.mark.parametrize("fails", ["body", "rename"])
def test_a_temporary_that_cannot_be_removed_does_not_hide_the_error(tmp_path, monkeypatch, fails) -> None:
    """Removing the temporary on the way out raised its own error (PermissionError), which replaced the one that
    made the write fail."""
    target = tmp_path / "out.tif"
    if fails == "rename":
        err: Exception = _failing_rename(monkeypatch, lambda src, dst: dst == target)
    else:
        err = RuntimeError("killed")
    unlink = Path.unlink
    entered = []

    def refused(self, *args, **kwargs):
        if entered and self.name.startswith(".out.tmp-"):
            raise PermissionError(13, "Permission denied", str(self))
        return unlink(self, *args, **kwargs)

    monkeypatch.setattr(Path, "unlink", refused)
    with pytest.raises(type(err)) as raised:
        with atomic_path(target) as tmp:
            entered.append(tmp)
            tmp.write_bytes(b"x")
            if fails == "body":
                raise err
    assert raised.value is err
