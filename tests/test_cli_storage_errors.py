"""A full disk, quota or read-only folder met by any writer (pyarrow, safetensors and GDAL carry only the OS
message) ended non-training commands with a traceback (reliability audit): one line naming the file and what to do,
exit code 1, no empty output folder left; other errors keep their traceback."""

from __future__ import annotations

import errno
import os

import pytest

from geodino import cli
from geodino.io import make_dirs


class SafetensorError(Exception):
    """Stands in for safetensors' error type, which carries only the OS message."""


def run(monkeypatch, tmp_path, exc: BaseException, capsys) -> tuple[int, str]:
    out = tmp_path / "made"

    def fails(args) -> int:
        make_dirs(out)  # an output folder the run created before the write failed
        raise exc

    parser = cli.build_parser("info")
    sub = next(a for a in parser._actions if a.dest == "command").choices["info"]
    sub.set_defaults(func=fails)
    monkeypatch.setattr(cli, "build_parser", lambda first: parser)
    code = cli.main(["info", "x.pth"])
    assert not out.exists()
    return code, capsys.readouterr().err


def test_full_disk_is_one_line_naming_the_file(monkeypatch, tmp_path, capsys):
    err = OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(tmp_path / "f.parquet"))
    code, text = run(monkeypatch, tmp_path, err, capsys)
    assert code == 1 and text.count("\n") == 1
    assert text.startswith(f"geodino: error: the storage refused a write writing {tmp_path / 'f.parquet'} (No space")


def test_a_library_error_with_the_os_message_in_its_chain(monkeypatch, tmp_path, capsys):
    try:
        try:
            raise SafetensorError("Error while serializing: IoError(No space left on device (os error 28))")
        except SafetensorError as inner:
            raise RuntimeError("cache write failed") from inner
    except RuntimeError as outer:
        code, text = run(monkeypatch, tmp_path, outer, capsys)
    assert code == 1 and "the storage refused a write (No space left on device)" in text and text.count("\n") == 1


def test_read_only_and_permission_errors(monkeypatch, tmp_path, capsys):
    code, text = run(monkeypatch, tmp_path, OSError(errno.EROFS, "Read-only file system", "/ro/x.tif"), capsys)
    assert code == 1 and "writing /ro/x.tif (Read-only file system)" in text
    code, text = run(monkeypatch, tmp_path, PermissionError(errno.EACCES, "Permission denied", "/p/y.tif"), capsys)
    assert (
        code == 1
        and text.strip()
        == "geodino: error: permission denied on /p/y.tif (Permission denied); make it readable or writable"
    )


def test_other_errors_keep_their_traceback(monkeypatch, tmp_path, capsys):
    with pytest.raises(ValueError, match="a bug"):
        run(monkeypatch, tmp_path, ValueError("a bug"), capsys)


def test_a_refused_write_names_the_output_not_its_temporary(tmp_path) -> None:
    """Every writer writes under a hidden `.STEM.tmp-TAG-PID.SUFFIX` name: a refusal named that one (`permission
    denied on /sys/.z.tmp-vm_1-25641.yaml`); it names the output asked for."""
    from geodino.cli import storage_error
    from geodino.io_temps import temp_name, temp_target

    for out in (tmp_path / "z.yaml", tmp_path / "last.ckpt", tmp_path / "x.tar.gz", tmp_path / "noext"):
        assert temp_target(temp_name(out)) == out
    assert temp_target(tmp_path / "plain.yaml") is None
    denied = PermissionError(errno.EACCES, "Permission denied", str(temp_name(tmp_path / "z.yaml")))
    assert (
        storage_error(denied)
        == f"permission denied on {tmp_path / 'z.yaml'} (Permission denied); make it readable or writable"
    )
    full = OSError(errno.ENOSPC, "No space left on device", str(temp_name(tmp_path / "f.tif")))
    assert f"writing {tmp_path / 'f.tif'} (" in storage_error(full)
