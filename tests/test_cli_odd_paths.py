"""The CLI's lines for paths the OS refuses: a name past 255 bytes (an input: `File name too long` was a traceback),
a file past the file-size limit (`ulimit -f`, FAT32's 4 GiB: EFBIG was a traceback), and an option value that
starts with a dash (`--out -x.tif`: argparse's bare "expected one argument")."""

from __future__ import annotations

import errno
import os

import pytest

from geodino import cli
from geodino.cli import storage_error


def test_name_too_long_and_file_too_large_are_one_line() -> None:
    long = OSError(errno.ENAMETOOLONG, os.strerror(errno.ENAMETOOLONG), "/d/" + "y" * 300 + ".tif")
    assert storage_error(long) == (
        f"file name too long: /d/{'y' * 300}.tif; use names of at most 255 bytes (and paths of at most 4096)"
    )
    big = OSError(errno.EFBIG, os.strerror(errno.EFBIG), "/d/f.tif")
    line = storage_error(big)
    assert line is not None and line.startswith("the storage refused a write writing /d/f.tif (File too large: ")
    assert line.endswith("raise the limit, then run the same command again")


def test_a_dash_value_says_how_to_pass_it(capsys, tmp_path) -> None:
    with pytest.raises(SystemExit) as stop:
        cli.main(["embed", "pca", str(tmp_path / "f.tif"), "--out", "-o.tif"])
    assert stop.value.code == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "argument --out/-o: expected one argument (a value that starts with '-'" in err
    assert "write --out=-VALUE, or ./-NAME for a file)" in err


def test_export_into_an_existing_folder_is_refused_not_written_beside_it(tmp_path, capsys) -> None:
    from tests.test_bad_inputs import one_line_exit_2
    from tests.test_output_locks import _checkpoint

    ckpt = _checkpoint(tmp_path / "b.ckpt")
    folder = tmp_path / "exports"
    folder.mkdir()
    line = one_line_exit_2(capsys, tmp_path, "export", ckpt, folder)
    want = f"export output {folder} is a folder; an export is files OUT.pth, OUT.safetensors, OUT.heads.pth and "
    assert line.endswith(want + f"OUT.stac.json: name them, e.g. {folder / 'backbone.pth'}"), line
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b.ckpt", "exports"]  # was exports.pth ... beside it
    assert not any(folder.iterdir())
