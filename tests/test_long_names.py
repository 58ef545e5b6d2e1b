"""An output of a long name (a 250-byte one, the most most file systems take) failed with `File name too long`
and a traceback: its hidden siblings (the temporary `.STEM.tmp-TAG-PID.SUFFIX`, an earlier folder's aside
`.NAME.old-TAG-PID`, embed's work folder `.NAME.partial`) passed 255 bytes. Their NAME is cut (`fit_name`) and the
same cut is found again by the sweep and by a resumed run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from geodino.embed.workdir import output_of, work_dir_for
from geodino.io import atomic_path, sweep_temps, temp_name
from geodino.io_temps import NAME_MAX, fit_name, writer_tag

LONG = "é" * 60 + "x" * 125  # 245 bytes before the suffix: an ASCII cut would split a character


def _bytes(p: Path) -> int:
    return len(p.name.encode())


def test_a_file_and_a_folder_of_a_long_name_are_written_and_replaced(tmp_path) -> None:
    out, store = tmp_path / f"{LONG}.tif", tmp_path / f"{LONG}.zarr"
    assert _bytes(out) == 249 and _bytes(temp_name(out)) <= NAME_MAX
    for text in ("first", "second"):  # the second replaces the first: a folder is set aside, then removed
        with atomic_path(out) as tmp:
            tmp.write_text(text)
        with atomic_path(store) as tmp:
            tmp.mkdir()
            (tmp / "chunk").write_text(text)
    assert out.read_text() == "second" and (store / "chunk").read_text() == "second"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted([out.name, store.name])


def test_the_cut_keeps_characters_whole_and_tells_names_apart() -> None:
    a, b = fit_name(LONG + "a", 100), fit_name(LONG + "b", 100)
    assert a != b and len(a.encode()) <= 100 and a.startswith("é" * 45)
    assert fit_name("short.tif", 100) == "short.tif"
    dotted = Path("/d") / f"v1.{'x' * 245}.tif"  # its suffix is all but `v1`: the cut keeps `.tif` only
    assert _bytes(temp_name(dotted)) <= NAME_MAX and temp_name(dotted).suffix == ".tif"


def test_a_killed_run_of_a_long_name_is_swept(tmp_path) -> None:
    out = tmp_path / f"{LONG}.tif"
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True)
    pid = int(dead.stdout)
    mine = temp_name(out)
    left = mine.with_name(mine.name.replace(f"-{os.getpid()}.", f"-{pid}."))
    left.write_text("half")
    assert f"-{writer_tag()}-{pid}." in left.name
    assert sweep_temps(out) == [left] and not left.exists()


def test_embed_work_folder_of_a_long_name(tmp_path) -> None:
    out = tmp_path / f"{LONG}.zarr"
    work = work_dir_for(out)
    assert _bytes(work) <= NAME_MAX and work.name.startswith(".") and work.name.endswith(".partial")
    work.mkdir()  # an uncut `.NAME.partial` is 256 bytes: File name too long
    assert output_of(work) == out and work_dir_for(out) == work
    short = tmp_path / "f.tif"
    assert work_dir_for(short).name == ".f.tif.partial" and output_of(tmp_path / ".f.tif.partial") == short


def test_an_output_name_past_name_max_is_one_line_before_any_work(tmp_path, capsys) -> None:
    """A 300-byte output name: the first stat of it raised `File name too long` with a traceback (exit code 1)."""
    import numpy as np
    import pytest

    from geodino import cli
    from geodino.errors import InputError
    from tests.helpers import write_tif

    out = tmp_path / f"{'y' * 300}.yaml"
    with pytest.raises(InputError, match=r"is 305 bytes, more than the 255 a file or folder name may have"):
        with atomic_path(out) as tmp:
            tmp.write_text("never")
    scene = write_tif(tmp_path / "s.tif", np.ones((2, 16, 16), np.uint16))
    assert cli.main(["data", "stats", str(scene), "--out", str(out), "--samples", "4"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith(f"geodino: error: output {out}: the name yyy")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["s.tif"]
