"""`sweep_temps` reads a temporary's pid as ASCII digits (as `temp_name` writes `os.getpid()`): `\\d` took any
Unicode digit, so a name geodino never writes (`.out.tmp-node_2-` + Arabic-Indic digits + `.tif`) counted as
another host's temporary and was deleted once a day old; the same for old-format gather copies."""

from __future__ import annotations

from pathlib import Path

from geodino.io_temps import sweep_temps
from tests.helpers import stale_file

ARABIC_34 = "\u0663\u0664"


def test_non_ascii_pid_is_no_temporary(tmp_path: Path) -> None:
    odd = stale_file(tmp_path / f".out.tmp-node_2-{ARABIC_34}.tif")
    stale = stale_file(tmp_path / ".out.tmp-node_2-34.tif")  # another host's, a day old: a killed run's
    assert sweep_temps(tmp_path / "out.tif") == [stale]
    assert odd.is_file()


def test_non_ascii_pid_is_no_legacy_gather_copy(tmp_path: Path) -> None:
    odd = stale_file(tmp_path / f".step_00000004.ckpt.full-node2-{ARABIC_34}.pt")
    stale = stale_file(tmp_path / ".step_00000004.ckpt.full-node2-34.pt")
    assert sweep_temps(tmp_path / "step_00000004.ckpt.full.pt") == [stale]
    assert odd.is_file()
